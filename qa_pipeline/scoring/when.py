"""An item's `when`: whether, and when first, what makes the item apply happened in the call —
the customer or the agent said a cue, the intent model heard one, or a wait went on too long."""

from __future__ import annotations

from qa_pipeline.meaning.judge import Closest
from qa_pipeline.records import AGENT, CUSTOMER
from qa_pipeline.scoring.checks.context import BY_MEANING, BY_MODEL, Call, said_at
from qa_pipeline.scoring.intents import load_model
from qa_pipeline.scoring.rubric_records import Meaning, When

MIN_INTENT_CHARS = 3  # a shorter utterance (来, 好的, 没了) says too little for the intent model to judge
# A complaint is seldom one utterance, and what the customer says is heard in pieces: the words, the
# model or an example often catch its second or third sentence. What the agent says in the LEAD_S
# before the piece that was caught, once the customer has spoken, answers the complaint too.
LEAD_S = 15.0


def customer_means(model_says: bool, close: Closest | None, meaning: Meaning | None) -> str | None:
    """Whether a customer turn means what a `when` looks for: BY_MEANING when its closest example
    counts on its own; BY_MODEL when the intent model says so and the turn is not closer to a
    near-miss (a neutral question) than to any example by the margin; else None."""
    if meaning is not None and close is not None and close.counts(meaning):
        return BY_MEANING
    if model_says and (meaning is None or close is None or close.near_miss is None or close.gap > -meaning.margin):
        return BY_MODEL
    return None


def trigger(call: Call, w: When) -> tuple[float, str, str | None] | None:
    """(from when the item's check looks, description, what decided it: None for words and waits,
    BY_MODEL, BY_MEANING) of the earliest trigger, or None. A wait or the agent's words: from the
    trigger on; the customer's words: from LEAD_S before them, not before the customer first spoke."""
    found = _triggers(call, w)
    if not found:
        return None
    at, desc, how, customer = min(found, key=lambda f: f[0])
    if customer:
        spoke = min((s.utt.start for s in call.eligible(CUSTOMER)), default=at)
        at = max(spoke, at - LEAD_S)
    return at, desc, how


def _triggers(call: Call, w: When) -> list[tuple[float, str, str | None, bool]]:
    """(time, description, what decided it, whether the customer's words) of each kind of trigger."""
    found: list[tuple[float, str, str | None, bool]] = []
    for speaker, phrases in ((CUSTOMER, w.customer_says), (AGENT, w.agent_says)):
        if phrases:
            # Cue words match as written or as homophones only: one confused syllable turns
            # 怎么还 into 怎么改; the intent model covers what the words miss.
            hits = call.hits(call.eligible(speaker), phrases, tolerance=0)
            if hits:
                found.append((hits[0].start, call.say("trigger.says", who=call.who(speaker),
                                                      said=said_at(call, hits[0])), None, speaker == CUSTOMER))
    if w.customer_intent or w.meaning is not None:
        model = load_model() if w.customer_intent else None
        segs = call.eligible(CUSTOMER)
        best: dict[int, Closest] = {}
        if w.meaning is not None:
            for close in call.meaning.closest(w.meaning, [s.n for s in segs]):
                best.setdefault(close.seg, close)
        for seg in segs:
            close = best.get(seg.n)
            judged = model is not None and len(seg.prep.norm) >= MIN_INTENT_CHARS
            said = [(label, *model.says(label, seg.utt.text, norm=seg.prep.norm, pinyin=seg.prep.pinyin))
                    for label in w.customer_intent] if judged else []
            yes = next(((label, p) for label, ok, p in said if ok), None)
            how = customer_means(yes is not None, close, w.meaning)
            if how == BY_MEANING:
                found.append((seg.utt.start, call.say("trigger.meaning", t=f"{seg.utt.start:.1f}",
                                                      quote=seg.utt.text[:20], example=close.example.text,
                                                      sim=f"{close.similarity:.2f}"), BY_MEANING, True))
                break
            if how == BY_MODEL:
                label, p = yes
                found.append((seg.utt.start, call.say(f"trigger.model.{label}", t=f"{seg.utt.start:.1f}",
                                                      quote=seg.utt.text[:20], p=f"{p:.2f}"), BY_MODEL, True))
                break
    if w.wait_over_s is not None:
        waits = call.waits(w.wait_over_s)
        if waits:
            found.append((waits[0].start, call.say("trigger.wait", len=f"{waits[0].length:.1f}",
                                                   t=f"{waits[0].start:.1f}"), None, False))
    return found
