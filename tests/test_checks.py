"""Check kinds are plug-ins: one module each in scoring/checks/, named in one table, and a new
kind is a module and a table entry — the rubric reader and the scorer need nothing else."""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass, fields

import pytest

from qa_pipeline.records import AGENT, CUSTOMER, FAIL, PASS
from qa_pipeline.scoring import checks
from qa_pipeline.scoring.checks import KINDS, kind_of
from qa_pipeline.scoring.checks.context import searched
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.rubric import RubricError, load_rubric, parse_rubric, rubric_hotwords, rubric_path_default
from qa_pipeline.scoring.score import score_call
from test_score import HEAD, item, meta, transcript, utt, words_for

SHARED = {"context", "kind"}  # what the kinds import, not kinds themselves


def test_every_kind_module_is_in_the_table_under_its_own_name():
    modules = {m.name for m in pkgutil.iter_modules(checks.__path__)} - SHARED
    assert modules == set(KINDS)
    for name, kind in KINDS.items():
        assert kind.name == name
        assert "type" in kind.keys
        defaults = {f.name: f.default for f in fields(kind.options)}
        assert defaults["type"] == name  # what `qa rubric show` prints, and how kind_of finds the kind


def test_the_default_rubric_uses_the_kinds_from_the_table():
    rubric = load_rubric(rubric_path_default())
    assert {kind_of(i.check).name for i in rubric.items} <= set(KINDS)
    assert "您好" in rubric_hotwords(rubric)  # the phrase kind's hotwords reach Whisper's prompt


def test_an_unknown_kind_is_refused_naming_every_kind():
    with pytest.raises(RubricError) as e:
        parse_rubric(HEAD + item("x", "type: talk_share\nmax_share: 0.5"), "t.yaml")
    assert str(e.value) == ("t.yaml:12: item 'x': unknown check type 'talk_share' (allowed: phrase, introduction, "
                            "confirmation, hold, silence, interruption, speech_rate, hangup, forbidden)")
    with pytest.raises(TypeError):
        kind_of(object())


# --- a new kind: the agent's share of the words, in this file only ------------------------------


@dataclass(frozen=True)
class TalkShareCheck:
    max_share: float = 0.7
    type: str = "talk_share"


def _parse(r, node, m, where, weight):
    share = r.number_at(m, "max_share", where, 0.7)
    if share > 1:
        raise r.error(m["max_share"], f"{where}: max_share must be at most 1")
    return TalkShareCheck(max_share=share)


def _judge(call, it, c, after):
    agent = sum(len(s.prep.norm) for s in call.segs if s.utt.speaker == AGENT)
    total = sum(len(s.prep.norm) for s in call.segs)
    share = agent / total if total else 0.0
    text, start, end = searched(call.eligible(AGENT), AGENT, call)
    return call.verdict(PASS if share <= c.max_share else FAIL, "talk_share", reason=f"agent's share {share:.2f}",
                        evidence_text=text, start=start, end=end, matched_by="timeline")


def test_a_new_kind_is_one_module_and_one_table_entry(monkeypatch):
    monkeypatch.setitem(KINDS, "talk_share", Kind("talk_share", TalkShareCheck, ("type", "max_share"), _parse, _judge))
    rubric = parse_rubric(HEAD + item("share", "type: talk_share\nmax_share: 0.6"), "t.yaml")
    assert rubric.items[0].check == TalkShareCheck(max_share=0.6)

    def said(speaker, start, end, text):
        return utt(speaker, start, end, text, words=words_for(text, start, end))

    talky = transcript(said(AGENT, 0.0, 4.0, "您好请问有什么可以帮您的吗"), said(CUSTOMER, 4.5, 5.5, "查话费"))
    balanced = transcript(said(AGENT, 0.0, 1.0, "您好"), said(CUSTOMER, 1.5, 3.0, "我想查一下话费"))
    assert score_call(talky, meta(), rubric, processed_at="t").items[0].result == FAIL
    got = score_call(balanced, meta(), rubric, processed_at="t").items[0]
    assert (got.result, got.evidence_text, got.reason) == (PASS, "您好", "agent's share 0.22")

    with pytest.raises(RubricError, match=r"^t.yaml:13: item 'share': talk_share check: max_share must be at most 1$"):
        parse_rubric(HEAD + item("share", "type: talk_share\nmax_share: 1.5"), "t.yaml")
    unknown_key = r"^t.yaml:13: item 'share': talk_share check: unknown key 'min_share' \(allowed: type, max_share\)$"
    with pytest.raises(RubricError, match=unknown_key):
        parse_rubric(HEAD + item("share", "type: talk_share\nmin_share: 0.1"), "t.yaml")
    assert rubric_hotwords(rubric) == ""  # a kind without hotwords adds none

