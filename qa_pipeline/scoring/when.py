"""An item's `when`: whether, and when first, what makes the item apply happened in the call —
the customer or the agent said a cue, the intent model heard one, or a wait went on too long."""

from __future__ import annotations

from qa_pipeline.records import AGENT, CUSTOMER
from qa_pipeline.scoring.checks.context import Call, said_at
from qa_pipeline.scoring.intents import load_model
from qa_pipeline.scoring.rubric_records import When


def trigger(call: Call, w: When) -> tuple[float, str, bool] | None:
    """(time, description, decided by the model) of the earliest trigger, or None."""
    found: list[tuple[float, str, bool]] = []
    for speaker, phrases in ((CUSTOMER, w.customer_says), (AGENT, w.agent_says)):
        if phrases:
            # Cue words match as written or as homophones only: one confused syllable turns
            # 怎么还 into 怎么改; the intent model covers what the words miss.
            hits = call.hits(call.eligible(speaker), phrases, tolerance=0)
            if hits:
                found.append((hits[0].start, call.say("trigger.says", who=call.who(speaker),
                                                      said=said_at(call, hits[0])), False))
    if w.customer_intent:
        model = load_model()
        for seg in call.eligible(CUSTOMER):
            for label in w.customer_intent:
                yes, p = model.says(label, seg.utt.text, norm=seg.prep.norm, pinyin=seg.prep.pinyin)
                if yes:
                    found.append((seg.utt.start, call.say(f"trigger.model.{label}", t=f"{seg.utt.start:.1f}",
                                                          quote=seg.utt.text[:20], p=f"{p:.2f}"), True))
                    break
            else:
                continue
            break
    if w.wait_over_s is not None:
        waits = call.waits(w.wait_over_s)
        if waits:
            found.append((waits[0].start, call.say("trigger.wait", len=f"{waits[0].length:.1f}",
                                                   t=f"{waits[0].start:.1f}"), False))
    return min(found, key=lambda f: f[0]) if found else None
