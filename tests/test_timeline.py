"""build_timeline: turns, silences (word gaps included) and who talked over whom."""

from __future__ import annotations

from dataclasses import replace

import pytest

from factories import make_transcript, make_utterance
from qa_pipeline.records import AGENT, CUSTOMER, UNKNOWN, CallTranscript, Word
from qa_pipeline.scoring.timeline import Overlap, Silence, Turn, build_timeline


def transcript(lines, *, n_channels=2, duration_s=30.0) -> CallTranscript:
    utterances = tuple(make_utterance("c1", n, sp, a, b, t) for n, (sp, a, b, t) in enumerate(lines))
    return CallTranscript("c1", duration_s, n_channels, utterances, "base")


def test_one_speakers_close_utterances_merge_into_a_turn():
    t = transcript([
        (AGENT, 0.5, 2.0, "您好"), (AGENT, 2.6, 4.0, "请问有什么可以帮您"),  # 0.6 s apart: one turn
        (CUSTOMER, 4.5, 6.0, "宽带断了"),
        (AGENT, 6.5, 7.0, "好的"), (AGENT, 8.5, 9.0, "请稍等"),  # 1.5 s apart: two turns
    ])
    turns = build_timeline(t).turns
    assert [(u.speaker, u.start, u.end, u.utterance_ids) for u in turns] == [
        (AGENT, 0.5, 4.0, ("c1-00000", "c1-00001")),
        (CUSTOMER, 4.5, 6.0, ("c1-00002",)),
        (AGENT, 6.5, 7.0, ("c1-00003",)),
        (AGENT, 8.5, 9.0, ("c1-00004",)),
    ]
    assert turns[0] == Turn(AGENT, 0.5, 4.0, "您好 请问有什么可以帮您", ("c1-00000", "c1-00001"))


def test_a_reply_between_two_utterances_keeps_them_apart():
    t = transcript([(AGENT, 0.0, 2.0, "您好"), (CUSTOMER, 2.1, 2.4, "喂"), (AGENT, 2.5, 4.0, "请讲")])
    assert [u.speaker for u in build_timeline(t).turns] == [AGENT, CUSTOMER, AGENT]


def test_a_backchannel_inside_a_turn_does_not_split_it():
    t = transcript([(AGENT, 0.0, 5.0, "您的宽带明天上午有师傅上门"), (CUSTOMER, 2.0, 2.3, "嗯"),
                    (AGENT, 5.5, 7.0, "请您保持电话畅通")])
    turns = build_timeline(t).turns
    assert [(u.speaker, u.start, u.end) for u in turns] == [(AGENT, 0.0, 7.0), (CUSTOMER, 2.0, 2.3)]


def test_silences_between_speakers_with_who_before_and_after():
    t = transcript([(AGENT, 1.0, 3.0, "您好"), (CUSTOMER, 5.0, 6.0, "你好"), (AGENT, 6.0, 8.0, "请讲")],
                   duration_s=10.0)
    silences = build_timeline(t).silences
    assert [(s.start, s.end, s.before, s.after) for s in silences if s.seconds > 0.5] == [
        (0.0, 1.0, None, AGENT), (3.0, 5.0, AGENT, CUSTOMER), (8.0, 10.0, AGENT, None),
    ]
    gaps = build_timeline(t).gaps(0.5)
    assert gaps == (Silence(3.0, 5.0, AGENT, CUSTOMER, "c1-00000", "c1-00001"),)


def test_a_hold_inside_one_utterance_is_a_silence():
    words = (Word("请您稍等", 10.0, 11.0, 0.9), Word("让您久等了", 24.0, 25.0, 0.9))
    hold = replace(make_utterance("c1", 0, AGENT, 10.0, 25.0, "请您稍等让您久等了"), words=words)
    t = CallTranscript("c1", 30.0, 2, (hold,), "base")
    (gap,) = build_timeline(t).gaps(7.0)
    assert (gap.start, gap.end, gap.before, gap.after) == (11.0, 24.0, AGENT, AGENT)
    assert gap.before_utterance == gap.after_utterance == "c1-00000"
    # without word timestamps the utterance is speech from end to end
    assert build_timeline(replace(t, utterances=(replace(hold, words=()),))).gaps(7.0) == ()


def test_speech_of_another_speaker_fills_a_gap():
    t = transcript([(AGENT, 0.0, 2.0, "您好"), (CUSTOMER, 1.5, 9.0, "我想问一下我家宽带怎么又断了"),
                    (AGENT, 10.0, 11.0, "好的")])
    assert [(s.start, s.end) for s in build_timeline(t).gaps()] == [(9.0, 10.0)]


def test_overlap_says_who_talked_over_whom_and_for_how_long():
    t = transcript([(CUSTOMER, 0.0, 4.0, "我家宽带断了三天了"), (AGENT, 3.0, 6.0, "好的我帮您查询")])
    (o,) = build_timeline(t).overlaps
    assert (o.first, o.second, o.start, o.utterance_id) == (CUSTOMER, AGENT, 3.0, "c1-00001")
    assert o.end == pytest.approx(4.0) and o.seconds == pytest.approx(1.0)
    # the customer cutting in on the agent
    t = transcript([(AGENT, 0.0, 4.0, "请您稍等我帮您查询"), (CUSTOMER, 2.0, 3.0, "不用了")])
    (o,) = build_timeline(t).overlaps
    assert (o.first, o.second) == (AGENT, CUSTOMER) and o.seconds == pytest.approx(1.0)


def test_no_overlap_when_turns_follow_each_other():
    assert build_timeline(make_transcript()).overlaps == ()


def test_mono_has_no_overlaps():
    lines = [(UNKNOWN, 0.0, 4.0, "我家宽带断了三天了"), (UNKNOWN, 3.0, 6.0, "好的我帮您查询")]
    t = transcript(lines, n_channels=1)
    timeline = build_timeline(t)
    assert timeline.overlaps == ()
    assert [(u.start, u.end) for u in timeline.turns] == [(0.0, 6.0)]


def test_overlap_record_and_empty_call():
    assert Overlap(1.0, 2.0, CUSTOMER, AGENT, 1.0, "c1-00001").second == AGENT
    empty = build_timeline(CallTranscript("c1", 5.0, 2, (), "base"))
    assert (empty.turns, empty.silences, empty.overlaps) == ((), (), ())


def test_timeline_is_time_ordered_and_in_bounds_on_a_whole_call():
    t = make_transcript()
    timeline = build_timeline(t)
    starts = [s.start for s in timeline.silences]
    assert starts == sorted(starts)
    assert all(0 <= s.start < s.end <= t.duration_s for s in timeline.silences)
    assert sum(len(turn.utterance_ids) for turn in timeline.turns) == len(t.utterances)
    # the 8.8 s hold in the default call (15.2 → 24.0 s) is the one long gap
    assert [(g.start, g.end) for g in timeline.gaps(7.0)] == [(15.2, 24.0)]


def test_who_is_talking_is_found_as_a_scan_of_every_word_would_find_it():
    """Overlaps look up who is talking when an utterance starts by bisection; a plain scan of every
    other speaker's word must give the same overlaps, on calls with many crossing utterances."""
    import random

    from qa_pipeline.scoring.timeline import speech_intervals

    def scanned(utterances):
        spoken = [(a, b, u.speaker) for u in utterances for a, b in speech_intervals(u)]
        out = []
        for u in utterances:
            others = [(a, b, who) for a, b, who in spoken if who != u.speaker]
            talking = next((who for a, b, who in others if a < u.start < b), None)
            both = [(max(a1, a2), min(b1, b2)) for a1, b1 in speech_intervals(u) for a2, b2, _ in others
                    if min(b1, b2) > max(a1, a2)]
            if talking is not None and sum(b - a for a, b in both) > 0:
                out.append((u.utterance_id, talking, round(sum(b - a for a, b in both), 6)))
        return out

    rng = random.Random(3)
    seen = 0
    for _ in range(200):
        lines, t = [], 0.0
        for _ in range(rng.randint(1, 12)):
            t += rng.uniform(-1.5, 2.0)
            start = max(0.0, t)
            lines.append((rng.choice([AGENT, CUSTOMER]), start, start + rng.uniform(0.3, 3.0), "好的我帮您查询一下"))
        timeline = build_timeline(transcript(sorted(lines, key=lambda x: (x[1], x[2])), duration_s=60.0))
        utterances = sorted(transcript(sorted(lines, key=lambda x: (x[1], x[2]))).utterances,
                            key=lambda u: (u.start, u.end))
        got = [(o.utterance_id, o.first, round(o.seconds, 6)) for o in timeline.overlaps]
        assert got == scanned(utterances)
        seen += len(got)
    assert seen > 50
