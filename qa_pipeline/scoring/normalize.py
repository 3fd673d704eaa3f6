"""Text normalisation for phrase matching.

Matching runs on a canonical form of the text: simplified characters, half-width forms, no
punctuation or whitespace, lower-case latin, and digit runs written with Arabic digits whether the
speaker (or Whisper) wrote 一三九 or 139.  `normalize_with_map` also keeps, for every character of
the canonical form, the index of the input character it came from, so that a match can be mapped
back to the original text and from there to word timestamps.
"""

from __future__ import annotations

import logging
import unicodedata
from functools import lru_cache

log = logging.getLogger("qa_pipeline")

_DIGIT_OF = {
    "零": "0", "〇": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
    "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
}  # fmt: skip

# Characters that OpenCC t2s leaves alone because they are also valid simplified characters, but
# that Whisper writes for the common word: 你等著 for 你等着, 到帐 for 到账.  Matching only.
_FOLD = {"著": "着", "帐": "账"}

_DIGIT_PINYIN = {
    "0": "ling", "1": "yi", "2": "er", "3": "san", "4": "si",
    "5": "wu", "6": "liu", "7": "qi", "8": "ba", "9": "jiu",
}  # fmt: skip

_converter = None


def _opencc():
    global _converter
    if _converter is None:
        import opencc  # lazy: building the converter reads its dictionaries

        _converter = opencc.OpenCC("t2s")
    return _converter


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC t2s)."""
    if not text:
        return text
    return _opencc().convert(text)


def _simplified_same_length(text: str) -> str:
    converted = to_simplified(text)
    if len(converted) == len(text):
        return converted
    # Phrase-level conversion changed the length; convert per character to keep a 1:1 map.
    return "".join(c if len(s := to_simplified(c)) != 1 else s for c in text)


def _half_width(ch: str) -> str:
    code = ord(ch)
    if code == 0x3000:
        return " "
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    return ch


def _keep(ch: str) -> bool:
    return unicodedata.category(ch)[0] in ("L", "N")


_CANONICAL: dict[str, tuple[str, bool]] = {}  # character → (its canonical form, kept?), filled as met


def _canonical(ch: str) -> tuple[str, bool]:
    """A character folded, half-width and lower-cased, and whether it is a letter or digit (kept).
    Numerals (letters) become digits later: kept either way."""
    got = _CANONICAL.get(ch)
    if got is None:
        c = _FOLD.get(ch, _half_width(ch))
        low = c.lower()
        c = low if len(low) == 1 else c
        got = _CANONICAL[ch] = (c, _keep(c))
    return got


def _numerals_to_digits(chars: list[str]) -> list[str]:
    """Chinese numerals → digits where they form a digit string.

    A numeral is converted when it is part of a run of two or more numerals/digits (一三九,
    五零三, 1三9), so that single numerals inside words (一下, 一直, 第一, 万一, 不一定) stay.
    Punctuation and spaces end a run.
    """
    out = list(chars)
    n = len(chars)
    i = 0
    while i < n:
        if chars[i] in _DIGIT_OF or chars[i].isdigit():
            j = i
            while j < n and (chars[j] in _DIGIT_OF or chars[j].isdigit()):
                j += 1
            if j - i >= 2:
                for k in range(i, j):
                    out[k] = _DIGIT_OF.get(chars[k], chars[k])
            i = j
        else:
            i += 1
    return out


def normalize_with_map(text: str) -> tuple[str, tuple[int, ...]]:
    """Canonical form of `text` and, per canonical character, its index in `text`."""
    canonical = [_canonical(ch) for ch in _simplified_same_length(text)]
    # Numerals first, while punctuation still separates runs: 八八四六 一下 keeps its 一.
    chars = _numerals_to_digits([c for c, _ in canonical])
    kept = [pos for pos, (_, keep) in enumerate(canonical) if keep]
    return "".join([chars[pos] for pos in kept]), tuple(kept)


@lru_cache(maxsize=4096)
def normalize_text(text: str) -> str:
    """Canonical form used for matching: see the module docstring."""
    return normalize_with_map(text)[0]


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


@lru_cache(maxsize=65536)
def _word_pinyin(word: str) -> tuple[str, ...]:
    from pypinyin import lazy_pinyin  # lazy: loads its phrase dictionary

    return tuple(lazy_pinyin(word))


@lru_cache(maxsize=4096)
def _pinyin_run(run: str) -> tuple[str, ...]:
    from pypinyin import lazy_pinyin
    from pypinyin.seg import mmseg

    # What lazy_pinyin(run) does with a run of Han characters: pypinyin's words (its segmentation,
    # pypinyin.seg.simpleseg.seg, is mmseg's for such a run), each read on its own (a word's
    # reading does not depend on its neighbours), so each word is converted once per process.
    syllables = [s for word in mmseg.seg.cut(run) for s in _word_pinyin(word)]
    if len(syllables) != len(run):  # never expected for pure Han runs; keep the 1:1 contract
        syllables = [lazy_pinyin(c)[0] for c in run]
    return tuple(syllables)


def to_pinyin(text: str) -> list[str]:
    """Toneless pinyin, one syllable per character of `text`.

    Han characters get their reading (in context, so 还有 → hai you); digits get the reading of the
    numeral; any other character stands for itself (lower-cased).  Pass normalised text to get a
    list parallel to it.
    """
    out: list[str] = []
    run: list[str] = []
    for ch in text:
        if _is_han(ch):
            run.append(ch)
            continue
        if run:
            out.extend(_pinyin_run("".join(run)))
            run = []
        out.append(_DIGIT_PINYIN.get(ch, ch.lower()))
    if run:
        out.extend(_pinyin_run("".join(run)))
    return out
