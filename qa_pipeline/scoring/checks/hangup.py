"""`hangup`: who hung up first (manifest, a busy tone after the customer's last words, or the
recording ending right after the agent's), against who should (`expect`)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from qa_pipeline.records import AGENT, CUSTOMER, FAIL, NA, PASS, UNKNOWN
from qa_pipeline.scoring.checks.context import SLACK_S, Call, Verdict
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import Item


@dataclass(frozen=True)
class HangupCheck:
    expect: str = "customer"  # who should hang up first: customer | agent
    tail_s: float = 1.0  # recording ending within this after the agent's last words = agent hung up
    type: str = "hangup"


def parse(r: RubricReader, node: yaml.Node, m: dict[str, yaml.Node], where: str, weight: float) -> HangupCheck:
    expect = r.choice(m["expect"], f"{where}: expect", ("customer", "agent")) if "expect" in m else "customer"
    return HangupCheck(expect=expect, tail_s=r.number_at(m, "tail_s", where, 1.0))


def judge(call: Call, item: Item, c: HangupCheck, after: float | None) -> Verdict:
    side, method, why = None, None, ""
    last_customer = max((s.utt.end for s in call.eligible(CUSTOMER)), default=0.0)
    last = call.segs[-1] if call.segs else None
    if call.meta.hangup_by in (AGENT, CUSTOMER):
        side, method = call.meta.hangup_by, "manifest"
        why = call.say("hangup.by_manifest", side=side)
        ev_text, ev_start, ev_end = f"hangup_by={side} (manifest)", call.speech_end, call.t.duration_s
    else:
        tone = next(
            (e for e in call.t.events if e.kind == "busy_tone" and e.start >= last_customer - SLACK_S), None
        )
        if tone is not None:
            side, method = CUSTOMER, "audio"
            why = call.say("hangup.by_tone", t=f"{last_customer:.1f}", a=f"{tone.start:.1f}", b=f"{tone.end:.1f}")
            ev_text, ev_start, ev_end = f"[busy tone {tone.start:.1f}-{tone.end:.1f} s]", tone.start, tone.end
        elif last is not None and last.utt.speaker in (AGENT, UNKNOWN):
            tail = call.t.duration_s - last.utt.end
            if tail <= c.tail_s:
                side, method = AGENT, "audio"
                why = call.say("hangup.by_end", t=f"{last.utt.end:.1f}", tail=f"{tail:.1f}")
                ev_text, ev_start, ev_end = last.utt.text, last.utt.start, call.t.duration_s
    if side is None:
        tail = call.t.duration_s - call.speech_end
        return call.verdict(NA, "hangup.undecidable", {"tail": f"{tail:.1f}"})
    result = PASS if side == c.expect else FAIL
    return call.verdict(result, f"hangup.{side}_first", {"why": why}, evidence_text=ev_text, start=ev_start,
                        end=ev_end, matched_by=method)


KIND = Kind("hangup", HangupCheck, ("type", "expect", "tail_s"), parse, judge)
