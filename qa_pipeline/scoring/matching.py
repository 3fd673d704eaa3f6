"""Find rubric phrases in a transcribed utterance.

A phrase is written once, in correct Chinese, and matched on normalised text (see normalize.py):
first as an exact substring; failing that, on toneless pinyin with a small syllable-level edit
tolerance, so that Whisper's homophones (公号/功耗 for 工号, 克服 for 客服, 为 for 喂, 就等 for 久等)
still match.

Phrase syntax, as written in a rubric:
    工号            a literal phrase (text, then pinyin)
    ^喂             anchored: only at the very start of the utterance
    =是吗           text only, never by sound (for short phrases whose homophones are common words)
    re:工号\\d{3,}   a regular expression on the normalised text (no punctuation, digits as 0-9)
Single-syllable phrases match on text only unless anchored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz.distance import Levenshtein

from qa_pipeline.scoring.normalize import normalize_with_map, to_pinyin

LITERAL = "literal"
REGEX = "regex"

BY_TEXT = "text"
BY_PINYIN = "pinyin"


@dataclass(frozen=True)
class Phrase:
    source: str  # as written in the rubric
    text: str  # normalised phrase, or the regex pattern
    kind: str = LITERAL  # literal | regex
    anchored: bool = False
    by_sound: bool = True


@dataclass(frozen=True)
class PreparedText:
    """An utterance's text, normalised once for all the phrases matched against it."""

    original: str
    norm: str
    index: tuple[int, ...]  # norm position → position in `original`
    pinyin: tuple[str, ...]  # parallel to `norm`


@dataclass(frozen=True)
class Match:
    phrase: str  # Phrase.source
    text: str  # the matched stretch of the original text
    how: str  # text | pinyin
    start: int  # offsets into the original text, end exclusive
    end: int
    norm_start: int  # offsets into the normalised text, end exclusive
    norm_end: int
    edits: int = 0


def parse_phrase(spec: str) -> Phrase:
    """A Phrase from its rubric spelling; ValueError if it is empty or a bad regex."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("phrase must be a non-empty string")
    raw = spec.strip()
    if raw.startswith("re:"):
        pattern = raw[3:]
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"bad regular expression {pattern!r}: {e}") from e
        return Phrase(source=raw, text=pattern, kind=REGEX, by_sound=False)
    anchored = raw.startswith("^")
    body = raw[1:] if anchored else raw
    by_sound = not body.startswith("=")
    body = body if by_sound else body[1:]
    norm = normalize_with_map(body)[0]
    if not norm:
        raise ValueError(f"phrase {raw!r} has no letters or digits")
    return Phrase(source=raw, text=norm, anchored=anchored, by_sound=by_sound)


def prepare(text: str) -> PreparedText:
    norm, index = normalize_with_map(text)
    return PreparedText(original=text, norm=norm, index=index, pinyin=tuple(to_pinyin(norm)))


def default_tolerance(n_syllables: int) -> int:
    """Syllable edits allowed for a phrase of this length."""
    if n_syllables >= 8:
        return 2
    if n_syllables >= 4:
        return 1
    return 0


def _make(p: PreparedText, phrase: Phrase, ns: int, ne: int, how: str, edits: int) -> Match:
    start = p.index[ns]
    end = p.index[ne - 1] + 1
    return Match(
        phrase=phrase.source,
        text=p.original[start:end],
        how=how,
        start=start,
        end=end,
        norm_start=ns,
        norm_end=ne,
        edits=edits,
    )


def _edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """rapidfuzz's C++ Levenshtein on syllable tuples."""
    return Levenshtein.distance(a, b)


@lru_cache(maxsize=4096)
def _phrase_pinyin(text: str) -> tuple[str, ...]:
    return tuple(to_pinyin(text))


def _pinyin_hits(
    text: tuple[str, ...], pat: tuple[str, ...], k: int, anchored: bool
) -> list[tuple[int, int, int]]:
    """(start, end, edits) of non-overlapping windows of `text` within k edits of `pat`."""
    m = len(pat)
    if m == 0 or len(text) < m - k:
        return []
    if k > 0 and sum(1 for s in set(pat) if s in text) < len(set(pat)) - k:
        return []
    hits: list[tuple[int, int, int]] = []
    starts = [0] if anchored else range(len(text))
    syllables = set(pat)
    i_min = 0
    for i in starts:
        if i < i_min or (not anchored and text[i] not in syllables):
            continue  # a hit must start on one of the phrase's syllables (see below)
        best: tuple[int, int, int] | None = None
        for length in range(max(1, m - k), m + k + 1):
            window = tuple(text[i : i + length])
            if len(window) < length:
                break
            # The window's first and last syllables must belong to the phrase; otherwise a
            # shorter or shifted window is the better match.
            d = 0 if window == pat else _edit_distance(pat, window)
            if d <= k and (best is None or d < best[2] or (d == best[2] and length == m)):
                best = (i, i + length, d)
        if best is not None and (k == 0 or best[2] == 0 or (text[i] in pat)):
            hits.append(best)
            i_min = best[1]
    return hits


def find_all(p: PreparedText, phrase: Phrase, *, tolerance: int | None = None) -> tuple[Match, ...]:
    """Every non-overlapping occurrence of `phrase` in `p`: text matches, or else sound matches."""
    if phrase.kind == REGEX:
        return tuple(
            _make(p, phrase, m.start(), m.end(), BY_TEXT, 0)
            for m in re.finditer(phrase.text, p.norm)
            if m.end() > m.start()
        )
    if phrase.anchored:
        if p.norm.startswith(phrase.text):
            return (_make(p, phrase, 0, len(phrase.text), BY_TEXT, 0),)
    else:
        found: list[Match] = []
        pos = p.norm.find(phrase.text)
        while pos >= 0:
            found.append(_make(p, phrase, pos, pos + len(phrase.text), BY_TEXT, 0))
            pos = p.norm.find(phrase.text, pos + len(phrase.text))
        if found:
            return tuple(found)
    if not phrase.by_sound or (len(phrase.text) < 2 and not phrase.anchored):
        return ()
    pat = _phrase_pinyin(phrase.text)
    k = default_tolerance(len(pat)) if tolerance is None else tolerance
    return tuple(
        _make(p, phrase, s, e, BY_PINYIN, d)
        for s, e, d in _pinyin_hits(p.pinyin, pat, k, phrase.anchored)
    )


def find_first(
    p: PreparedText, phrases: tuple[Phrase, ...], *, tolerance: int | None = None
) -> Match | None:
    """The earliest occurrence of any of `phrases` (text matches preferred at equal position)."""
    best: Match | None = None
    for phrase in phrases:
        for m in find_all(p, phrase, tolerance=tolerance):
            key = (m.norm_start, m.how != BY_TEXT, m.edits)
            if best is None or key < (best.norm_start, best.how != BY_TEXT, best.edits):
                best = m
            break
    return best


def match_text(text: str, spec: str, *, tolerance: int | None = None) -> Match | None:
    """Convenience: the first match of one phrase (rubric spelling) in raw text."""
    hits = find_all(prepare(text), parse_phrase(spec), tolerance=tolerance)
    return hits[0] if hits else None
