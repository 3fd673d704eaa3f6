"""Which lane (stereo channel or mono cluster) is the agent's: a scored combination of what each
side says and how a call is built, so that no single cue list decides.

Evidence for a lane being the agent's, each from the lane's kept utterances:

  service   +1 per agent formula it says (opening 工号 / 客服 / 热线 / 有什么可以帮, holding 请您稍等 /
            让您久等, closing 还有什么可以帮 / 感谢您的来电 …; 您好 counts in the first 20 s only,
            as customers answer 你好); in characters, or as the same toneless syllables within a unit edit
  request   -1 per customer request formula (我想 / 我要 / 我家 / 你们 / 帮我 / 投诉 …): what a caller
            says of their own need; in characters only, as short words heard by sound match too much
  first     +FIRST_WEIGHT for the lane that speaks first (its first utterance of two characters or
            more starts earliest) on an inbound call, or one of unknown direction: the agent answers
            after pickup.
  answers   -FIRST_WEIGHT, its outbound twin, for the lane that picks up an outbound call: the lane
            whose first utterance opens the call and is nothing but a phone answer (喂 / 你好 / 哪位 /
            找谁, by sound: Whisper writes 喂 as 为). An outbound agent who speaks first says more
            (您好，请问是王先生吗) and is not marked.

The lane with the highest score is the agent's; on a tie, the lane that speaks first (inbound or
unknown direction) or the one that did not pick up (outbound), else the lowest lane, undecided
(stereo then says `default`). FIRST_WEIGHT is
two formulae: an agent whose opening Whisper garbled (no formula heard) still outweighs a customer
whose 您好 fell inside the opening window, while a call whose agent is heard saying three or more
formulae never turns on who happened to speak first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from qa_pipeline.scoring.matching import match_cue
from qa_pipeline.scoring.normalize import to_pinyin

# What an agent says and a customer does not; 您好 counts in the opening only (customers answer
# 你好). 我是 is not a cue: customers say 对，我是. One list for stereo channels and mono clusters.
AGENT_CUES = ("工号", "客服", "热线", "有什么可以帮", "很高兴为您服务", "还有什么可以帮", "感谢您的来电",
              "请您稍等", "让您久等", "跟您确认", "给您确认", "为您",
              # the seeds' other closing questions (003 还需要什么帮助, 002 还有其他事 / 其他吩咐)
              "还需要什么帮助", "还有其他需要", "还有其他事", "其他吩咐")
OPENING_CUES = ("您好",)
OPENING_S = 20.0
# What a caller says of their own need and an agent does not (an agent says 您, 我帮您, 我的工号).
CUSTOMER_CUES = ("我想", "我要", "我家", "我们家", "你们", "帮我", "给我", "投诉", "我刚", "我买")
FIRST_WEIGHT = 2.0
MIN_FIRST_CHARS = 2  # a first utterance shorter than this (嗯, a stray 喂) does not say who answered
# How a callee picks up, as toneless syllables: 喂 (为 / 位 / 味 …), 你好 / 您好, 哪位, 谁 / 找谁, and the
# particles around them. An answer is made of these alone and says 喂, 哪位, 谁 or 你好; a question
# back (请问你是哪位 / 你找谁) only with 哪位 or 谁 in it. A short utterance that opens with 喂 is an
# answer whatever Whisper made of the rest (喂，哪位呀 heard as 喂，老妹呀).
ANSWER_SYLLABLES = frozenset({"wei", "ni", "nin", "hao", "na", "nei", "shui", "shei", "zhao", "a", "ya", "ne", "o",
                              "ou", "ai", "en", "ei", "la"})
ASKING_BACK = frozenset({"qing", "wen", "shi", "you", "shen", "me", "shir"})
ANSWER_MAX_SYLLABLES = 10
WEI_ANSWER_MAX_SYLLABLES = 5


def agent_cues(text: str, start: float) -> int:
    """How many agent cues a stretch of speech starting at `start` s carries: characters, or the
    same toneless syllables within a unit edit (Whisper's 公号 and 克服 still count; no meaning
    variants, no confusion costs: matching.match_cue)."""
    cues = AGENT_CUES + (OPENING_CUES if start < OPENING_S else ())
    return sum(match_cue(text, cue) for cue in cues)


def is_phone_answer(text: str) -> bool:
    """Whether an utterance is nothing but picking up the phone: 喂？/ 喂，你好？/ 你好，哪位？/ 喂，找谁？"""
    syllables = to_pinyin(_compact(text))
    if syllables[:1] == ["wei"] and len(syllables) <= WEI_ANSWER_MAX_SYLLABLES:
        return True
    said = set(syllables)
    if not syllables or len(syllables) > ANSWER_MAX_SYLLABLES or not said <= ANSWER_SYLLABLES | ASKING_BACK:
        return False
    joined = " ".join(syllables)
    asks_who = bool({"shui", "shei"} & said) or "na wei" in joined or "nei wei" in joined
    if said & ASKING_BACK and not asks_who:
        return False
    return asks_who or "wei" in said or "ni hao" in joined or "nin hao" in joined


def customer_cues(text: str) -> int:
    """How many customer request formulae a stretch of speech carries, in characters."""
    return sum(text.count(cue) for cue in CUSTOMER_CUES)


@dataclass(frozen=True)
class LaneEvidence:
    """Why a lane is (or is not) taken for the agent's."""

    lane: int
    service: int  # agent formulae heard
    request: int  # customer request formulae heard
    first: bool  # speaks first after pickup (inbound or unknown direction)
    starts_at: float  # its first utterance of MIN_FIRST_CHARS+ characters (inf: none)
    answers: bool = False  # picks up an outbound call (its first words open the call and are a phone answer)

    @property
    def score(self) -> float:
        return (self.service - self.request + (FIRST_WEIGHT if self.first else 0.0)
                - (FIRST_WEIGHT if self.answers else 0.0))


@dataclass(frozen=True)
class RoleChoice:
    agent: int | None  # None: no lane spoke
    evidence: tuple[LaneEvidence, ...]
    decided: bool  # False: the top lanes scored alike and nothing told them apart (the lowest lane by default)

    def describe(self) -> str:
        return "; ".join(f"lane {e.lane}: {e.score:+.1f} (service {e.service}, request {e.request}"
                         f"{', first' if e.first else ''}{', picks up' if e.answers else ''})" for e in self.evidence)


def choose_agent(lanes: Mapping[int, Sequence[tuple[float, str]]], direction: str | None = None) -> RoleChoice:
    """The agent's lane from each lane's (start, simplified text) utterances and the call's direction."""
    starts = {lane: min((start for start, text in said if len(_compact(text)) >= MIN_FIRST_CHARS), default=float("inf"))
              for lane, said in lanes.items()}
    answered = min(starts.values(), default=float("inf"))
    outbound = (direction or "inbound").strip().lower() == "outbound"
    first_counts = not outbound and answered < float("inf")
    picked_up = _picks_up(lanes) if outbound else None
    evidence = tuple(
        LaneEvidence(
            lane,
            sum(agent_cues(text, start) for start, text in said),
            sum(customer_cues(text) for _start, text in said),
            first_counts and starts[lane] == answered,
            starts[lane],
            lane == picked_up,
        )
        for lane, said in sorted(lanes.items())
    )
    if not evidence:
        return RoleChoice(None, (), False)
    top = max(e.score for e in evidence)
    tied = [e for e in evidence if e.score == top]
    if len(tied) == 1:
        return RoleChoice(tied[0].lane, evidence, True)
    if first_counts and len({e.starts_at for e in tied}) == len(tied):  # the one who answers first
        return RoleChoice(min(tied, key=lambda e: e.starts_at).lane, evidence, True)
    return RoleChoice(tied[0].lane, evidence, False)  # nothing tells them apart: the lowest lane


def _picks_up(lanes: Mapping[int, Sequence[tuple[float, str]]]) -> int | None:
    """The lane that picks up an outbound call: its first utterance opens the call (no other lane
    has spoken before it) and is a phone answer; None when the call opens otherwise."""
    opening = min(((start, lane, text) for lane, said in lanes.items() for start, text in said if _compact(text)),
                  default=None)
    if opening is None:
        return None
    _start, lane, text = opening
    return lane if is_phone_answer(text) else None


def _compact(text: str) -> str:
    return re.sub(r"\W", "", text)
