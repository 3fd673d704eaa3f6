"""Find rubric phrases in a transcribed utterance.

A phrase is written once, in correct Chinese, and matched on normalised text (see normalize.py):
first as a substring; failing that, on toneless pinyin with a confusion-aware syllable distance
(phonetic.py), so that Whisper's sound-alikes (公号/功耗 for 工号, 克服 for 客服, 为 for 喂, 就等 for 久等,
收等 for 稍等) still match while unrelated phrases do not.

What does not change the meaning does not stop a match (`variants`): 我/我们, 你/您/你们, 这个/那个/这/那,
没/没有, 什么/啥, and the particles 吧/啊/呢/呀/嘛/哦/啦 (and a final 了) may be present or not.

Phrase syntax, as written in a rubric:
    工号            a literal phrase (text, then sound; with the variants above)
    ^喂             anchored: only at the very start of the utterance
    对吧$           at its very end (a tag question ends what was said: heard by sound there only)
    =是吗           text only, never by sound (for short phrases whose homophones are common words)
    什么…帮         every part, in any order, within a short span (a few characters more than the
                    parts themselves): a question word near a need word
    re:工号\\d{3,}   a regular expression on the normalised text (no punctuation, digits as 0-9), on
                    RE2 (linear time; no lookaround): a group (?P<m>…) is the match, the rest context
Single-syllable phrases match on text only unless anchored.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz.distance import Levenshtein

from qa_pipeline.linear_re import compile_regex
from qa_pipeline.scoring import phonetic
from qa_pipeline.scoring.normalize import normalize_with_map, to_pinyin

LITERAL = "literal"
REGEX = "regex"
MATCH_GROUP = "m"  # in a rubric regex, the named group that is the match (RE2 has no lookbehind)
NEAR = "near"

BY_TEXT = "text"
BY_PINYIN = "pinyin"

NEAR_SEPARATORS = ("…", "...")
NEAR_SLACK = 8  # characters a NEAR phrase's parts may spread beyond their own length
MAX_VARIANTS = 48
PARTICLES = "吧啊呢呀嘛哦啦"
COLLOQUIAL = "啥"  # 什么 as said colloquially: a variant matched by text only
POLITE_YOU = "nin"  # the syllable of 您, kept exact where the rubric is strict about it
_KEEP_NIN = frozenset((POLITE_YOU,))
_KEEP_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Phrase:
    source: str  # as written in the rubric
    text: str  # normalised phrase, or the regex pattern
    kind: str = LITERAL  # literal | regex | near
    anchored: bool = False
    at_end: bool = False  # only at the very end of the utterance
    by_sound: bool = True
    parts: tuple["Phrase", ...] = ()  # NEAR: every part within `span` characters, any order
    span: int = 0
    variants: tuple[str, ...] = field(default=(), compare=False)  # normalised forms meaning the same


@dataclass(frozen=True)
class PreparedText:
    """An utterance's text, normalised once for all the phrases matched against it."""

    original: str
    norm: str
    index: tuple[int, ...]  # norm position → position in `original`
    pinyin: tuple[str, ...]  # parallel to `norm`
    syllables: frozenset[str] = frozenset()  # set(pinyin), for a quick no before any search
    positions: dict[str, tuple[int, ...]] | None = field(default=None, compare=False)  # syllable → where in pinyin


@dataclass(frozen=True)
class Match:
    phrase: str  # Phrase.source
    text: str  # the matched stretch of the original text
    how: str  # text | pinyin
    start: int  # offsets into the original text, end exclusive
    end: int
    norm_start: int  # offsets into the normalised text, end exclusive
    norm_end: int
    edits: float = 0  # phonetic cost of a sound match (0 for text)


# --- variants: what does not change the meaning --------------------------------------------------


def _slots(norm: str, strict_you: bool) -> list[tuple[str, ...]]:
    """The phrase as a list of alternatives per position; the product is the variant set."""
    out: list[tuple[str, ...]] = []
    # A particle is optional only in a phrase that still says something without it (对吧 ≠ 对).
    optional_particles = sum(1 for ch in norm if ch not in PARTICLES + "了") >= 3
    i = 0
    while i < len(norm):
        two = norm[i : i + 2]
        ch = norm[i]
        if two in ("我们", "你们", "您们"):
            out.append((two, two[0]) if strict_you or two[0] == "我" else (two, "你", "您"))
            i += 2
            continue
        if two in ("这个", "那个"):
            out.append((two, "那个" if two == "这个" else "这个", "这", "那"))
            i += 2
            continue
        if two == "没有":
            out.append(("没有", "没"))
            i += 2
            continue
        if two == "什么":
            out.append(("什么", COLLOQUIAL))
            i += 2
            continue
        if ch == "我":
            out.append(("我", "我们"))
        elif ch in "你您" and not strict_you:
            out.append((ch, "您" if ch == "你" else "你", "你们"))
        elif ch in "这那":
            out.append((ch, "那" if ch == "这" else "这"))
        elif ch == "没":
            out.append(("没", "没有"))
        elif ch in PARTICLES and 0 < i and optional_particles:
            out.append((ch, ""))
        elif ch == "了" and i == len(norm) - 1 and optional_particles:
            out.append(("了", ""))
        else:
            out.append((ch,))
        i += 1
    return out


@lru_cache(maxsize=8192)
def variants(norm: str, strict_you: bool = False) -> tuple[str, ...]:
    """`norm` first, then the forms that mean the same (at most MAX_VARIANTS)."""
    seen: dict[str, None] = {norm: None}
    for combo in itertools.islice(itertools.product(*_slots(norm, strict_you)), MAX_VARIANTS * 4):
        v = "".join(combo)
        if v:
            seen.setdefault(v, None)
        if len(seen) >= MAX_VARIANTS:
            break
    return tuple(seen)


def parse_phrase(spec: str) -> Phrase:
    """A Phrase from its rubric spelling; ValueError if it is empty or a bad regex."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("phrase must be a non-empty string")
    raw = spec.strip()
    if raw.startswith("re:"):
        pattern = raw[3:]
        compile_regex(pattern)  # ValueError naming what RE2 refuses
        return Phrase(source=raw, text=pattern, kind=REGEX, by_sound=False)
    anchored = raw.startswith("^")
    body = raw[1:] if anchored else raw
    at_end = body.endswith("$")
    body = body[:-1] if at_end else body
    by_sound = not body.startswith("=")
    body = body if by_sound else body[1:]
    for sep in NEAR_SEPARATORS:
        if sep in body:
            if anchored or at_end:
                raise ValueError(f"phrase {raw!r}: a …-phrase cannot be anchored")
            parts = tuple(parse_phrase(("" if by_sound else "=") + p) for p in body.split(sep) if p.strip())
            if len(parts) < 2:
                raise ValueError(f"phrase {raw!r}: a …-phrase needs two parts or more")
            span = sum(len(p.text) for p in parts) + NEAR_SLACK
            return Phrase(source=raw, text="…".join(p.text for p in parts), kind=NEAR, by_sound=by_sound,
                          parts=parts, span=span)
    norm = normalize_with_map(body)[0]
    if not norm:
        raise ValueError(f"phrase {raw!r} has no letters or digits")
    return Phrase(source=raw, text=norm, anchored=anchored, at_end=at_end, by_sound=by_sound, variants=variants(norm))


def prepare(text: str) -> PreparedText:
    norm, index = normalize_with_map(text)
    pinyin = tuple(to_pinyin(norm))
    syllables, positions = phonetic.syllables_at(pinyin)
    return PreparedText(original=text, norm=norm, index=index, pinyin=pinyin, syllables=syllables, positions=positions)


def default_tolerance(n_syllables: int) -> float:
    """Phonetic cost a phrase of this many syllables may be off by (phonetic.budget)."""
    return phonetic.budget(n_syllables)


def _make(p: PreparedText, phrase: Phrase, ns: int, ne: int, how: str, edits: float) -> Match:
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


@lru_cache(maxsize=16384)
def _phrase_pinyin(text: str) -> tuple[str, ...]:
    return tuple(to_pinyin(text))


@dataclass(frozen=True)
class _Compiled:
    """A literal phrase made ready for matching: its forms as one regex, and their sounds."""

    forms: tuple[str, ...]  # the phrase and the variants that mean the same, as matched by `regex`
    regex: re.Pattern[str]
    sounds: tuple[tuple[tuple[str, ...], frozenset[str], int], ...]  # (syllables, distinct, how many exact)
    heard: frozenset[str]  # every form's syllables: a text with fewer than `fewest` of them holds no form
    fewest: int


@lru_cache(maxsize=16384)
def _compiled(text: str, flexible: bool, strict_you: bool, anchored: bool, at_end: bool) -> _Compiled:
    forms = variants(text, strict_you) if flexible or strict_you else (text,)
    # longest first, so that 我们也没有办法 wins over 我也没办法 at the same spot
    body = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    sounds: dict[tuple[str, ...], tuple[tuple[str, ...], frozenset[str], int]] = {}
    for form in forms:  # forms that sound the same are searched once
        if COLLOQUIAL in form:
            continue  # 啥 is matched as written: 急啥 (two syllables) would be heard in every 机上
        pat = _phrase_pinyin(form)
        distinct = frozenset(pat)
        sounds.setdefault(pat, (pat, distinct, min((len(pat) + 1) // 2, len(distinct))))
    heard = frozenset(syllable for _pat, distinct, _need in sounds.values() for syllable in distinct)
    return _Compiled(tuple(forms), re.compile(("^" if anchored else "") + f"(?:{body})" + ("$" if at_end else "")),
                     tuple(sounds.values()), heard,
                     min(need for _pat, _distinct, need in sounds.values()))


def _sound_hits(p: PreparedText, c: _Compiled, limit: float | None, anchored: bool,
                keep: frozenset[str], at_end: bool = False) -> list[tuple[int, int, float]]:
    found: list[tuple[int, int, float]] = []
    present = p.syllables or frozenset(p.pinyin)
    heard = (present, p.positions) if p.positions is not None else None
    for pat, distinct, need in c.sounds:
        if len(distinct & present) < need:
            continue  # not enough of the phrase heard as written: no window can qualify
        k = phonetic.budget(len(pat)) if limit is None else limit
        found.extend(phonetic.search(p.pinyin, pat, k, anchored=anchored, keep=keep, at_end=at_end, heard=heard))
    found.sort(key=lambda h: (h[0], h[2], -(h[1] - h[0])))
    out: list[tuple[int, int, float]] = []
    for h in found:
        if not out or h[0] >= out[-1][1]:
            out.append(h)
    return out


def _by_sound(phrase: Phrase) -> bool:
    """Whether a literal phrase not found as written is looked for by sound."""
    return phrase.by_sound and (len(phrase.text) >= 2 or phrase.anchored)


def find_all(p: PreparedText, phrase: Phrase, *, tolerance: float | None = None,
             strict_you: bool = False) -> tuple[Match, ...]:
    """Every non-overlapping occurrence of `phrase` in `p`: text matches, or else sound matches.

    `tolerance` caps the phonetic cost of a sound match (None: by the phrase's length).
    `strict_you`: 您 must be heard as 您 — no 你 in its place, by text or by sound."""
    if phrase.kind == REGEX:
        regex = compile_regex(phrase.text)
        group = regex.groupindex.get(MATCH_GROUP, 0)  # (?P<m>…): the part that counts, as a lookbehind would
        spans = (m.span(group) for m in regex.finditer(p.norm))
        return tuple(_make(p, phrase, a, b, BY_TEXT, 0) for a, b in spans if b > a >= 0)
    if phrase.kind == NEAR:
        return _near(p, phrase, tolerance, strict_you)
    c = _compiled(phrase.text, bool(phrase.variants), strict_you, phrase.anchored, phrase.at_end)
    if c.regex.search(p.norm):
        return tuple(_make(p, phrase, m.start(), m.end(), BY_TEXT, 0) for m in c.regex.finditer(p.norm))
    if not _by_sound(phrase):
        return ()
    if len(c.heard & (p.syllables or frozenset(p.pinyin))) < c.fewest:
        return ()  # no form has enough of its syllables here (what _sound_hits asks of each form)
    keep = _KEEP_NIN if strict_you else _KEEP_NONE
    return tuple(_make(p, phrase, s, e, BY_PINYIN, d)
                 for s, e, d in _sound_hits(p, c, tolerance, phrase.anchored, keep, phrase.at_end))


@dataclass(frozen=True)
class PhraseIndex:
    """Many phrases made ready to say at once which of them cannot occur in a text, by what `find_all`
    and `phonetic.search` ask first: some form as written, or enough of a form's syllables heard as
    written. Scoring asks about hundreds of phrases per utterance and finds a few; the index answers
    for all of them with one regex search and one walk over the utterance's syllables."""

    slots: tuple[_Compiled, ...]  # every literal phrase searched, …-phrases' parts included
    any_form: re.Pattern[str] | None  # every slot's forms, unanchored: no match, no slot matches as written
    heard_in: dict[str, tuple[tuple[int, int], ...]]  # syllable → (slot, how often a form of it says it)
    enough: tuple[float, ...]  # per slot: what its syllables heard must add up to (inf: text only)
    needs: tuple[tuple[int, ...], ...]  # per phrase: the slots that all must be possible
    owner: tuple[int, ...]  # per slot: the phrase it belongs to
    always: tuple[int, ...]  # phrases searched whatever the text (regular expressions)
    parted: frozenset[int]  # phrases of several slots (…-phrases)


_BY_ID: dict[tuple[int, bool, float | None], tuple[tuple[Phrase, ...], PhraseIndex]] = {}
_MAX_BY_ID = 4096


def phrase_index(phrases: tuple[Phrase, ...], strict_you: bool = False, tolerance: float | None = None) -> PhraseIndex:
    """The index of a phrase tuple searched with `find_all(…, tolerance=, strict_you=)`. A rubric's
    tuples are asked for again and again: found by identity first, without hashing every phrase; a
    tuple made for one call by its contents."""
    key = (id(phrases), strict_you, tolerance)
    held = _BY_ID.get(key)
    if held is not None and held[0] is phrases:
        return held[1]
    index = _index_of(phrases, strict_you, tolerance)
    if len(_BY_ID) >= _MAX_BY_ID:
        _BY_ID.clear()
    _BY_ID[key] = (phrases, index)
    return index


@lru_cache(maxsize=1024)
def _index_of(phrases: tuple[Phrase, ...], strict_you: bool, tolerance: float | None) -> PhraseIndex:
    slots: list[_Compiled] = []
    enough: list[float] = []
    weights: list[dict[str, int]] = []
    forms: dict[str, None] = {}

    def slot(phrase: Phrase) -> int:
        c = _compiled(phrase.text, bool(phrase.variants), strict_you, phrase.anchored, phrase.at_end)
        slots.append(c)
        forms.update(dict.fromkeys(c.forms))
        # A sound match holds, as written, all of a form's syllables but those its budget lets go
        # (phonetic.least_exact) and at least half of them (phonetic.search): counted with repeats.
        weight: dict[str, int] = {}
        least = math.inf
        for pat, _distinct, _need in c.sounds if _by_sound(phrase) else ():
            limit = phonetic.budget(len(pat)) if tolerance is None else tolerance
            least = min(least, max(phonetic.least_exact(len(pat), limit), (len(pat) + 1) // 2))
            for syllable in set(pat):
                weight[syllable] = max(weight.get(syllable, 0), pat.count(syllable))
        enough.append(least)
        weights.append(weight)
        return len(slots) - 1

    needs: list[tuple[int, ...]] = []
    owner: list[int] = []
    always: list[int] = []
    for n, phrase in enumerate(phrases):
        parts = phrase.parts if phrase.kind == NEAR else (phrase,)
        if all(part.kind == LITERAL for part in parts):
            needs.append(tuple(slot(part) for part in parts))
            owner.extend([n] * len(parts))
        else:
            needs.append(())
            always.append(n)
    heard_in: dict[str, list[tuple[int, int]]] = {}
    for i, weight in enumerate(weights):
        for syllable, times in weight.items():
            heard_in.setdefault(syllable, []).append((i, times))
    body = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return PhraseIndex(tuple(slots), re.compile(body) if body else None,
                       {s: tuple(at) for s, at in heard_in.items()}, tuple(enough), tuple(needs), tuple(owner),
                       tuple(always), frozenset(n for n, need in enumerate(needs) if len(need) > 1))


def possible(index: PhraseIndex, p: PreparedText) -> list[int]:
    """The positions (in order) of the index's phrases that `find_all` may find in `p`; every other
    one it would find nowhere."""
    heard: dict[int, int] = {}
    for syllable in p.syllables or frozenset(p.pinyin):
        for i, times in index.heard_in.get(syllable, ()):
            heard[i] = heard.get(i, 0) + times
    enough = index.enough
    ok = {i for i, n in heard.items() if n >= enough[i]}
    if index.any_form is not None and index.any_form.search(p.norm) is not None:
        ok.update(i for i, c in enumerate(index.slots) if i not in ok and c.regex.search(p.norm) is not None)
    found = {index.owner[i] for i in ok}
    found.update(index.always)
    if index.parted:
        needs = index.needs
        found = {n for n in found if n not in index.parted or all(i in ok for i in needs[n])}
    return sorted(found)


def _near(p: PreparedText, phrase: Phrase, tolerance: float | None, strict_you: bool) -> tuple[Match, ...]:
    per_part = [find_all(p, part, tolerance=tolerance, strict_you=strict_you) for part in phrase.parts]
    if not all(per_part):
        return ()
    out: list[Match] = []
    for combo in itertools.product(*per_part):
        ns, ne = min(m.norm_start for m in combo), max(m.norm_end for m in combo)
        spans = sorted((m.norm_start, m.norm_end) for m in combo)
        if ne - ns > phrase.span or any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
            continue
        how = BY_TEXT if all(m.how == BY_TEXT for m in combo) else BY_PINYIN
        out.append(_make(p, phrase, ns, ne, how, sum(m.edits for m in combo)))
    out.sort(key=lambda m: (m.norm_start, m.edits))
    kept: list[Match] = []
    for m in out:
        if not kept or m.norm_start >= kept[-1].norm_end:
            kept.append(m)
    return tuple(kept)


def find_first(
    p: PreparedText, phrases: tuple[Phrase, ...], *, tolerance: float | None = None
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


def match_text(text: str, spec: str, *, tolerance: float | None = None) -> Match | None:
    """Convenience: the first match of one phrase (rubric spelling) in raw text."""
    hits = find_all(prepare(text), parse_phrase(spec), tolerance=tolerance)
    return hits[0] if hits else None


# --- speaker cues: homophones and unit syllable edits, as the speaker stage has always matched ---


def _cue_tolerance(n_syllables: int) -> int:
    if n_syllables >= 8:
        return 2
    if n_syllables >= 4:
        return 1
    return 0


def _cue_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """rapidfuzz's C++ Levenshtein on syllable tuples."""
    return Levenshtein.distance(a, b)


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
            d = 0 if window == pat else _cue_distance(pat, window)
            if d <= k and (best is None or d < best[2] or (d == best[2] and length == m)):
                best = (i, i + length, d)
        if best is not None and (k == 0 or best[2] == 0 or (text[i] in pat)):
            hits.append(best)
            i_min = best[1]
    return hits


def match_cue(text: str, cue: str) -> bool:
    """Whether a speaker cue occurs in `text`: its characters, or its toneless syllables within a
    unit edit or two (no meaning variants, no confusion costs) — for the stage that tells who speaks."""
    p = prepare(text)
    norm = normalize_with_map(cue)[0]
    if norm in p.norm:
        return True
    if len(norm) < 2:
        return False
    pat = _phrase_pinyin(norm)
    return bool(_pinyin_hits(p.pinyin, pat, _cue_tolerance(len(pat)), False))


def is_pattern(source: str) -> bool:
    """Whether a phrase as written in a rubric is a pattern (a regex or a …-phrase) rather than the
    words themselves: a reason then quotes what was said, not the pattern."""
    body = source.lstrip("^=")
    return body.startswith("re:") or any(sep in body for sep in NEAR_SEPARATORS)
