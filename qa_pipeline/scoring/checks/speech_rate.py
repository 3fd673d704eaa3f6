"""`speech_rate`: the speaker's characters per minute of speaking time lie between `min_cpm` and `max_cpm`."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from qa_pipeline.records import FAIL, NA, PASS
from qa_pipeline.scoring.checks.context import Call, Seg, Verdict, searched
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import Item

SPEECH_GAP_S = 1.0  # pauses longer than this inside an utterance are not speaking time


@dataclass(frozen=True)
class SpeechRateCheck:
    min_cpm: float = 150.0
    max_cpm: float = 320.0
    type: str = "speech_rate"


def parse(r: RubricReader, node: yaml.Node, m: dict[str, yaml.Node], where: str, weight: float) -> SpeechRateCheck:
    lo, hi = r.number_at(m, "min_cpm", where, 150.0, above=False), r.number_at(m, "max_cpm", where, 320.0)
    if lo >= hi:
        raise r.error(node, f"{where}: min_cpm must be below max_cpm")
    return SpeechRateCheck(min_cpm=lo, max_cpm=hi)


def speaking_time(seg: Seg) -> float:
    words = seg.utt.words
    if not words:
        return max(0.0, seg.utt.end - seg.utt.start)
    total = 0.0
    run_start, run_end = words[0].start, words[0].end
    for w in words[1:]:
        if w.start - run_end > SPEECH_GAP_S:
            total += run_end - run_start
            run_start = w.start
        run_end = max(run_end, w.end)
    return total + run_end - run_start


def judge(call: Call, item: Item, c: SpeechRateCheck, after: float | None) -> Verdict:
    segs = call.eligible(item.speaker)
    seconds = sum(speaking_time(s) for s in segs)
    chars = sum(len(s.prep.norm) for s in segs)
    if seconds < 5.0:
        return call.verdict(NA, "rate.too_little", {"who": call.who(item.speaker), "s": f"{seconds:.1f}"})
    cpm = chars / seconds * 60
    ok = c.min_cpm <= cpm <= c.max_cpm
    text, start, end = searched(segs, item.speaker, call)
    code = "rate.within" if ok else ("rate.below" if cpm < c.min_cpm else "rate.above")
    return call.verdict(PASS if ok else FAIL, code,
                        {"cpm": f"{cpm:.0f}", "s": f"{seconds:.0f}", "lo": f"{c.min_cpm:g}", "hi": f"{c.max_cpm:g}"},
                        evidence_text=text, start=start, end=end, matched_by="timeline")


KIND = Kind("speech_rate", SpeechRateCheck, ("type", "min_cpm", "max_cpm"), parse, judge)
