"""Hallucination guards: segments Whisper invents over silence or music, removed but kept for audit."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Sequence

from qa_pipeline.asr.transcribe import segment_of_words
from qa_pipeline.records import RawSegment

# Phrases Whisper learned from subtitled video and emits over silence (simplified forms).
BOILERPLATE = (
    re.compile(r"字幕(由|提供|制作|组)"),
    # the video's call to action (请不吝点赞订阅转发打赏): two of its words together, or 不吝 before one — a
    # single 订阅 or 转发 is ordinary service talk (咖啡订阅服务, 我帮您转发给技术部)
    re.compile(r"不吝(点赞|订阅|转发|打赏)|(点赞|订阅|转发|打赏)(和|与|加)?(点赞|订阅|转发|打赏)"),
    re.compile(r"(谢谢|感谢)(大家)?(观看|收看|收听)"),
    re.compile(r"(明镜|优优)独播剧场"),
    re.compile(r"amara\.org", re.IGNORECASE),
)


@dataclass(frozen=True)
class GuardOptions:
    no_speech_prob: float = 0.6
    low_logprob: float = -1.0
    max_compression_ratio: float = 2.4
    min_repeats: int = 4  # a unit of 1-8 characters repeated this often in a row is a loop


def check_segment(segment: RawSegment, text: str, options: GuardOptions = GuardOptions()) -> str | None:
    """Return why `segment` (whose simplified text is `text`) should be dropped, or None to keep it."""
    compact = _strip(text)
    if not compact:
        return "empty text"
    for pattern in BOILERPLATE:
        if pattern.search(compact):
            return f"known subtitle boilerplate ({pattern.pattern})"
    if segment.no_speech_prob > options.no_speech_prob and segment.avg_logprob < options.low_logprob:
        return f"likely silence (no_speech_prob {segment.no_speech_prob:.2f}, avg_logprob {segment.avg_logprob:.2f})"
    if _has_loop(compact, options.min_repeats):
        return "repetition loop"
    if segment.compression_ratio > options.max_compression_ratio and len(compact) > 20:
        return f"repetitive text (compression ratio {segment.compression_ratio:.1f})"
    return None


def is_loop(segment: RawSegment, options: GuardOptions = GuardOptions()) -> bool:
    """Whether Whisper looped in this segment: a unit repeated over and over, or text that
    compresses like a loop."""
    compact = _strip(segment.text)
    return _has_loop(compact, options.min_repeats) or (
        segment.compression_ratio > options.max_compression_ratio and len(compact) > 20)


def trim_loop(segment: RawSegment, options: GuardOptions = GuardOptions()) -> tuple[RawSegment | None, RawSegment | None]:
    """Split a segment that ends in a repetition loop into (speech before the loop, the loop).

    Whisper often transcribes real speech correctly and then, over the silence that follows,
    repeats the last phrase (谢谢,谢谢,谢谢…); dropping the whole segment would lose the speech.
    Returns (segment, None) when there is no loop or no word timestamps to cut at.
    """
    if not segment.words:
        return segment, None
    tokens = [_strip(w.text) for w in segment.words]
    cut = _word_loop_start(tokens, options.min_repeats)
    if cut is None:
        return segment, None
    if cut == 0:
        return None, segment
    head, tail = segment.words[:cut], segment.words[cut:]
    return _piece(segment, head), _piece(segment, tail)


def _word_loop_start(tokens: list[str], min_repeats: int) -> int | None:
    """Index of the first word of a loop's repeats (its first occurrence is kept), or None.

    Works on words so that the cut falls between words; the earliest loop wins, and of loops
    starting at one word, the shortest unit."""
    n = len(tokens)
    for start in range(n):
        for unit in range(1, 9):
            if start + unit * 2 > n:
                break
            chunk = tokens[start:start + unit]
            needed = max(min_repeats, 6) if unit == 1 and len(chunk[0]) == 1 else min_repeats
            repeats = 1
            while tokens[start + repeats * unit:start + (repeats + 1) * unit] == chunk:
                repeats += 1
            if repeats >= needed and "".join(chunk):
                return start + unit
    return None


def _piece(segment: RawSegment, words) -> RawSegment:
    text = "".join(w.text for w in words).strip()
    return segment_of_words(segment.channel, words, segment.avg_logprob, segment.no_speech_prob, compression_ratio(text))


def compression_ratio(text: str) -> float:
    """As Whisper computes it: how much zlib shrinks the text; loops compress well."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _strip(text: str) -> str:
    return re.sub(r"[\s,.!?;:，。！？、；：…\-]", "", text)


def _find_loop(text: str, min_repeats: int) -> int | None:
    """Index where the repeats of a looping unit begin (after its first occurrence), or None.

    The loop that starts first wins; of loops starting at one place, the longest unit (谢谢谢谢
    is a loop of 谢谢, not of 谢)."""
    found: list[tuple[int, int]] = []
    for unit in range(1, 9):
        repeats = max(min_repeats, 6) if unit == 1 else min_repeats
        match = re.search(r"(.{%d})\1{%d,}" % (unit, repeats - 1), text)
        if match:
            found.append((match.start(), -unit))
    if not found:
        return None
    start, negative_unit = min(found)
    return start - negative_unit


def _has_loop(text: str, min_repeats: int) -> bool:
    # one character must repeat six times to count: 哈哈哈 or 对对对对 are speech
    return _find_loop(text, min_repeats) is not None


# --- repeats across segments ---------------------------------------------------------------------
#
# Over a hold with background babble Whisper can loop across segments: one phrase emitted as
# consecutive segments, each mapped to its own stretch of noise, so no single segment holds a loop.
# Looked at over a channel's segments together, the loop is a run of the same text, back to back.

@dataclass(frozen=True)
class RepeatOptions:
    min_run: int = 3  # this many consecutive pieces of a channel saying the same thing ...
    min_chars: int = 3  # ... of at least this many characters (对 / 好的 answered thrice is speech) ...
    min_run_short: int = 5  # ... or, for shorter texts, this many
    max_gap_s: float = 8.0  # ... each starting within this many seconds of the previous one's end


def repeated_runs(pieces: Sequence[tuple[float, float, str]], options: RepeatOptions = RepeatOptions()) -> list[tuple[int, ...]]:
    """Runs of consecutive pieces (start, end, text) of ONE audio channel, in time order, that say
    the same text over and over: the indexes of each run, every piece of it being a repeat."""
    keys = [_unit(_strip(text)) for _s, _e, text in pieces]
    runs: list[tuple[int, ...]] = []
    at = 0
    while at < len(pieces):
        end = at + 1
        while end < len(pieces) and keys[end] == keys[at] and pieces[end][0] - pieces[end - 1][1] <= options.max_gap_s:
            end += 1
        needed = options.min_run if len(keys[at]) >= options.min_chars else options.min_run_short
        if keys[at] and end - at >= needed:
            runs.append(tuple(range(at, end)))
        at = end
    return runs


def _unit(text: str) -> str:
    """The shortest unit the text repeats (我也是我也是我 → 我也是; 您好 → 您好): a loop's copies
    are often cut mid-phrase or doubled where the speaker split or the segment ends."""
    for size in range(1, len(text) + 1):
        unit = text[:size]
        if (unit * (len(text) // size + 1)).startswith(text):
            return unit
    return text
