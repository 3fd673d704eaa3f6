"""Recorded announcements: the phone system speaking on the agent's side before the agent does.

Many centres play a prompt when a call is put through ("您好，欢迎致电…，您的通话可能会被录音",
"正在为您转接人工服务，请稍候"). It is not the agent: its 您好 is no greeting of theirs, and on a mono
call its formulae (欢迎致电, 为您) would count for whichever speaker cluster its voice fell into. A
piece of the call's opening is a prompt when

  - it says what only a phone system announces: that the call is recorded (录音), that it is being
    transferred (转接), which key to press (请按…键) — by characters, or by toneless syllables, as
    Whisper writes 录音 as 路音; or
  - it says one of the centre's own prompt texts (rubric `centre: prompts:`), most of its characters
    (or syllables) in order.

The opening is the first pieces on the agent's side (stereo: the agent's channel; mono: either
speaker cluster, before the roles are chosen) within OPENING_S seconds, read together while they
follow each other closely (roles._take_prompts). When the agent's own words follow the prompt
without a pause between pieces, the opening is cut after the prompt's sentence (its sentence-final
punctuation, or the first pause of PAUSE_S after the announcement's words). Prompts keep their text
and times and get the speaker `system` (shown on the call card as 系统提示音); no rubric item judges them.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Sequence

from qa_pipeline.records import RawSegment, RawWord
from qa_pipeline.scoring import phonetic
from qa_pipeline.scoring.matching import match_cue
from qa_pipeline.scoring.normalize import normalize_text, to_pinyin

OPENING_S = 30.0
JOIN_GAP_S = 0.3  # pieces of the opening this close together are read as one (an announcement cut by pauses)
PAUSE_S = 0.3
CENTRE_PROMPT_SHARE = 0.6  # this share of a listed prompt's characters (or syllables), said in order
# What a phone system announces and an agent does not say in the opening.
NOTICE_CUES = ("录音", "转接")
# What an announcement ends with: said right after one of its clauses, it is the announcement's too.
CLOSING_CUES = ("请稍候", "请稍等", "请不要挂机", "请勿挂机", "请耐心等待")
CLAUSE_GAP_S = 0.6  # a clause this soon after the last belongs to the same recording
TAIL_CHARS = 3
KEY_PRESS = re.compile(r"请按.{0,6}键")
CLAUSE_END = "。？！，、；,.?!;"
ABSORBED_PAUSE_S = 0.55  # one character said this long holds the pause before it
AGENT_GREETINGS = ("您好", "你好")  # said after the announcement's own words, the agent has begun


def notice_said(text: str) -> bool:
    """Whether `text` announces recording, a transfer or a key to press: by characters, by toneless
    syllables, or with its first syllable one close confusion away (录音 heard as 入音, 转接 as 传接;
    not 录影 / 路一, which an agent's 露营 or an address also sounds like)."""
    norm = normalize_text(text)
    if KEY_PRESS.search(norm):
        return True
    if any(match_cue(text, cue) for cue in NOTICE_CUES):
        return True
    heard = tuple(to_pinyin(norm))
    return any(phonetic.search(heard, sound, phonetic.CLOSE, keep=frozenset(sound[1:])) for sound in _cue_sounds())


@lru_cache(maxsize=1)
def _cue_sounds() -> tuple[tuple[str, ...], ...]:
    """NOTICE_CUES' toneless syllables, worked out once."""
    return tuple(tuple(to_pinyin(normalize_text(cue))) for cue in NOTICE_CUES)


def says_prompt(text: str, prompt: str) -> bool:
    """Whether `text` says most of the centre's prompt text `prompt`, in order."""
    a, b = normalize_text(prompt), normalize_text(text)
    if not a or not b:
        return False

    def share(x, y) -> float:
        matcher = SequenceMatcher(None, x, y, autojunk=False)
        return sum(block.size for block in matcher.get_matching_blocks()) / len(x)

    return max(share(a, b), share(to_pinyin(a), to_pinyin(b))) >= CENTRE_PROMPT_SHARE


def is_prompt(text: str, centre_prompts: Sequence[str] = ()) -> bool:
    return notice_said(text) or any(says_prompt(text, p) for p in centre_prompts)


def split_prompt(piece: RawSegment, text_of, centre_prompts: Sequence[str] = ()) -> tuple[RawSegment | None, RawSegment | None]:
    """(the prompt, what follows it) of an opening piece: (None, piece) when it is no prompt;
    (piece, None) when all of it is. `text_of` turns raw text into the text the rest of the stage uses."""
    if not is_prompt(text_of(piece.text), centre_prompts):
        return None, piece
    words = piece.words
    if len(words) < 2:
        return piece, None
    # the shortest run of leading words that is a prompt, then on to the end of its clause, then
    # through the clauses that follow closely and announce too (…录音，正在为您转接…，请稍候)
    said = ""
    cut = None
    for i, word in enumerate(words):
        said += word.text
        if is_prompt(text_of(said), centre_prompts):
            cut = i
            break
    if cut is None:
        return piece, None
    cut = _clause_end(words, cut)
    while cut is not None and cut + 1 < len(words):
        following = _clause_end(words, cut + 1)
        end = len(words) - 1 if following is None else following
        clause = text_of("".join(w.text for w in words[cut + 1:end + 1]))
        if words[cut + 1].start - words[cut].end > CLAUSE_GAP_S or not (
                notice_said(clause) or any(match_cue(clause, c) for c in CLOSING_CUES)
                or any(says_prompt(clause, p) for p in centre_prompts)):
            break
        cut = following
    if cut is None or cut + 1 >= len(words):
        return piece, None
    # a last word or two of the recording that Whisper garbled (请稍候 heard as 解消后): up to
    # TAIL_CHARS characters right after the prompt that nothing follows closely
    tail_end = next((i for i in range(cut + 1, len(words) - 1) if words[i + 1].start - words[i].end > CLAUSE_GAP_S),
                    len(words) - 1)
    tail = "".join(w.text for w in words[cut + 1:tail_end + 1])
    if (words[cut + 1].start - words[cut].end <= CLAUSE_GAP_S and len(_compact(tail)) <= TAIL_CHARS
            and tail.strip()[-1:] in "。.!！"):
        cut = tail_end
        if cut + 1 >= len(words):
            return piece, None
    head, tail = words[: cut + 1], words[cut + 1:]
    return part_of(piece, head), part_of(piece, tail)


def _clause_end(words: Sequence[RawWord], first: int) -> int | None:
    """The last word of the clause that word `first` is in: the first word from there ending with
    punctuation or followed by a pause of PAUSE_S — or, where Whisper's timestamps gave that pause to
    the next word, followed by a greeting (…录音您好，安心家政…) or by a one-character word said
    ABSORBED_PAUSE_S or longer that does not end a clause itself (…录音 | 城通卡服务热线, 城 lasting 0.72 s;
    not 请稍候。, whose 候 is drawn out for ending); None when the words run out first."""
    for i in range(first, len(words) - 1):
        nxt = words[i + 1]
        if words[i].text.strip()[-1:] in CLAUSE_END or nxt.start - words[i].end >= PAUSE_S:
            return i
        if _compact("".join(w.text for w in words[i + 1:i + 3])).startswith(AGENT_GREETINGS):
            return i
        if len(_compact(nxt.text)) == 1 and nxt.end - nxt.start >= ABSORBED_PAUSE_S \
                and nxt.text.strip()[-1:] not in CLAUSE_END:  # 请稍候。's 候 is long for ending the clause
            return i
    return None


def _compact(text: str) -> str:
    return re.sub(r"\W", "", text)


def part_of(piece: RawSegment, words: Sequence[RawWord]) -> RawSegment:
    """The piece cut down to `words` (some of its own, in order): their times and text."""
    return RawSegment(piece.channel, words[0].start, words[-1].end, "".join(w.text for w in words).strip(),
                      piece.avg_logprob, piece.no_speech_prob, piece.compression_ratio, tuple(words))
