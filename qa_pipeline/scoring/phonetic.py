"""How far apart two toneless pinyin syllables sound, as Whisper confuses them on telephone audio.

A syllable is an initial and a final (`split`).  Two syllables that differ only by a confusion that
telephone Mandarin and Whisper make all the time — a retroflex for a flat initial (zh/z, ch/c,
sh/s), n/l, h/f, the aspirated partner (b/p, d/t, g/k, j/q), a front for a back nasal (in/ing,
en/eng, an/ang), a nasal coda dropped or added (i/in, e/eng), a medial dropped (an/uan, e/ue), ao/ou,
ong/ou — cost `CLOSE`; sharing only the initial or only the final costs `HALF`; anything else a full
edit.  Measured on the dev calls' cached transcripts against their reference turns
(bench/confusions.py): two thirds of the syllables Whisper got wrong share the initial or the final
with the right one, and the pairs above are the most frequent of those.

`distance` is the edit distance over syllable tuples with these substitution costs; `search` finds
the windows of an utterance within a cost budget of a phrase.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from functools import lru_cache

# Longest first, so that zh/ch/sh win over z/c/s.  y and w are spelling, not initials, but they
# behave like one (yi/i, wu/u) and keep zero-initial syllables comparable.
INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
            "j", "q", "x", "r", "z", "c", "s", "y", "w")  # fmt: skip

CLOSE = 0.5  # one confusion Whisper makes all the time
HALF = 0.75  # same initial or same final, otherwise unrelated
FULL = 1.0

_INITIAL_GROUPS = (
    {"z", "zh"}, {"c", "ch"}, {"s", "sh"}, {"n", "l"}, {"l", "r"}, {"h", "f"},
    {"b", "p"}, {"d", "t"}, {"g", "k"}, {"g", "h"}, {"k", "h"}, {"j", "q"}, {"q", "x"}, {"j", "x"},
    {"z", "c"}, {"zh", "ch"}, {"zh", "j"}, {"ch", "q"}, {"sh", "x"}, {"m", "n"},
    {"y", ""}, {"w", ""}, {"y", "w"},
)  # fmt: skip

# Finals that sound alike once the tone is gone and the line is narrow-band.
_FINAL_GROUPS = (
    {"in", "ing"}, {"en", "eng"}, {"an", "ang"}, {"ian", "iang"}, {"uan", "uang"},
    {"i", "in"}, {"i", "ing"}, {"e", "en"}, {"e", "eng"}, {"a", "an"}, {"a", "ang"}, {"u", "un"},
    {"an", "uan"}, {"ang", "uang"}, {"e", "ue"}, {"e", "uo"}, {"o", "uo"}, {"a", "ua"}, {"ai", "uai"},
    {"ao", "ou"}, {"ao", "ang"}, {"ong", "ou"}, {"o", "ou"}, {"ong", "eng"}, {"un", "en"}, {"un", "ong"},
    {"ian", "ie"}, {"ian", "an"}, {"ie", "e"}, {"ia", "a"}, {"iao", "ao"}, {"iu", "ou"},
    {"ui", "ei"}, {"ai", "ei"}, {"ai", "an"}, {"ei", "en"}, {"i", "ie"}, {"ue", "ie"},
    {"u", "v"}, {"u", "ou"}, {"u", "uo"}, {"i", "v"}, {"in", "un"}, {"ing", "ong"},
)  # fmt: skip

_INITIAL_PAIRS = frozenset(frozenset(g) for g in _INITIAL_GROUPS)
_FINAL_PAIRS = frozenset(frozenset(g) for g in _FINAL_GROUPS)


@lru_cache(maxsize=4096)
def split(syllable: str) -> tuple[str, str]:
    """('zh', 'ang') for 'zhang'; ('', 'an') for 'an'; (s, '') for anything that is not pinyin."""
    if not syllable.isalpha() or not syllable.isascii():
        return syllable, ""
    for initial in INITIALS:
        if syllable.startswith(initial) and len(syllable) > len(initial):
            return initial, syllable[len(initial):]
    return "", syllable


def _final(initial: str, final: str) -> str:
    # pypinyin writes ü as u after j/q/x/y (ju, que, xun, yuan): compare the sound, not the spelling.
    if initial in ("j", "q", "x", "y") and final.startswith("u"):
        return "v" + final[1:]
    if initial == "y" and final.startswith("i") and len(final) > 1:
        return final  # yin, ying: the i is the final
    return final


@lru_cache(maxsize=65536)
def cost(a: str, b: str) -> float:
    """Substitution cost between two toneless syllables: 0, CLOSE, HALF or FULL."""
    if a == b:
        return 0.0
    (ia, fa), (ib, fb) = split(a), split(b)
    if not fa or not fb:  # digits, latin letters: only equal is close
        return FULL
    fa, fb = _final(ia, fa), _final(ib, fb)
    same_i, same_f = ia == ib, fa == fb
    close_i = same_i or frozenset((ia, ib)) in _INITIAL_PAIRS
    close_f = same_f or frozenset((fa, fb)) in _FINAL_PAIRS
    if same_i and same_f:  # ju/jv spelling
        return 0.0
    if (same_i and close_f) or (same_f and close_i):
        return CLOSE
    if same_i or same_f or (close_i and close_f):
        return HALF
    return FULL


def distance(a: tuple[str, ...], b: tuple[str, ...], keep: frozenset[str] = frozenset(),
             cutoff: float = math.inf) -> float:
    """Weighted edit distance: substitutions by `cost` (FULL for a syllable of `keep` heard as any
    other), insertions and deletions FULL.

    Exact up to `cutoff`; above it, some figure above it (inf where a whole row is).  A cell i - j
    away from the diagonal costs at least that many insertions or deletions, so only the band
    within `cutoff` of the diagonal is worked out; every alignment passes through every row."""
    n = len(b)
    band = len(a) + n if cutoff == math.inf else int(cutoff // FULL)
    prev = [float(j) if j <= band else math.inf for j in range(n + 1)]
    for i, x in enumerate(a, 1):
        cur = [math.inf] * (n + 1)
        if i <= band:
            cur[0] = float(i)
        for j in range(max(1, i - band), min(n, i + band) + 1):
            y = b[j - 1]
            sub = cost(x, y) if not keep or x == y or (x not in keep and y not in keep) else FULL
            # min(above + FULL, left + FULL, diagonal + sub), as min() would pick it
            best = prev[j] + FULL
            if cur[j - 1] + FULL < best:
                best = cur[j - 1] + FULL
            if prev[j - 1] + sub < best:
                best = prev[j - 1] + sub
            cur[j] = best
        if min(cur) > cutoff:
            return math.inf
        prev = cur
    return prev[-1]


def budget(n_syllables: int) -> float:
    """Total cost a phrase of this many syllables may be off by and still count as heard.

    Two syllables: one close confusion (稍等/收等); three: a close and nothing else; four to seven:
    one full edit or two close ones; eight or more: two."""
    if n_syllables <= 1:
        return 0.0
    if n_syllables == 2:
        return CLOSE
    if n_syllables == 3:
        return CLOSE
    if n_syllables < 8:
        return FULL
    return 2 * FULL


def search(
    text: tuple[str, ...], pattern: tuple[str, ...], limit: float, *, anchored: bool = False,
    keep: frozenset[str] = frozenset(), at_end: bool = False,
    heard: tuple[frozenset[str], dict[str, tuple[int, ...]]] | None = None,
) -> list[tuple[int, int, float]]:
    """Non-overlapping (start, end, cost) windows of `text` within `limit` of `pattern`, best first
    at each position; `anchored`: starting the text only, `at_end`: ending it only.  `heard`: the
    text's `syllables_at`, where the caller keeps them (an utterance is searched for many phrases).

    At least half of the pattern's syllables must occur in the window exactly as written, so a
    budget spent on confusions cannot let an unrelated phrase through."""
    m = len(pattern)
    if m == 0 or not text:
        return []
    if limit <= 0:
        return [h for h in _exact_hits(text, pattern, anchored) if not at_end or h[1] == len(text)]
    need = (m + 1) // 2
    slack = int(limit // FULL)
    longest = m + slack
    present, positions = heard if heard is not None else _heard(tuple(text))
    if not slack:
        return _without_gaps(text, pattern, limit, keep, positions, anchored, at_end)
    anchors = _anchors(pattern, limit, positions)
    if not anchors:
        return []
    # Every window taken below holds `need` of the pattern's syllables as written within `longest`
    # syllables (at the start, if anchored): without such a stretch there is nothing to find.
    at = sorted(i for s in present.intersection(pattern) for i in positions[s])
    if anchored:
        at = [i for i in at if i < longest]
    if not any(at[j + need - 1] - at[j] < longest for j in range(len(at) - need + 1)):
        return []
    # A hit begins and ends on the phrase's own first and last syllables (or close to them):
    # 还有什么可以帮您 is not heard in 有什么可以帮您, whatever the budget.
    # ...and lies within `slack` of an anchor, at both ends (see _anchors)
    reach = {d + e for d in anchors for e in range(-slack, slack + 1)}
    near_first = _near(pattern[0], present)
    if anchored:
        starts = [0] if text[0] in near_first and 0 in reach else []
    else:
        starts = sorted(i for s in near_first for i in positions[s] if i in reach)
    ends = sorted(i + 1 for s in _near(pattern[-1], present) for i in positions[s] if i + 1 - m in reach)  # exclusive
    if at_end:
        ends = [e for e in ends if e == len(text)]
    shortest = max(1, m - slack)
    enough = max(need, least_exact(m, limit))  # heard as written in a window, else it is not costed
    out: list[tuple[int, int, float]] = []
    for i in starts:
        if out and i < out[-1][1]:
            continue
        if bisect.bisect_left(at, i + longest) - bisect.bisect_left(at, i) < need:
            continue  # fewer than `need` of the pattern's syllables in reach of this start
        best: tuple[int, int, float] | None = None
        for end in ends[bisect.bisect_left(ends, i + shortest): bisect.bisect_right(ends, min(i + longest, len(text)))]:
            window = text[i:end]
            if _exact(pattern, window) < enough:
                continue
            d = _distance_within(pattern, window, keep, limit + 1e-9)
            if d <= limit + 1e-9 and (best is None or d < best[2]):
                best = (i, end, d)
        if best is not None:
            out.append(best)
    return out


def least_exact(n_syllables: int, limit: float) -> int:
    """How many of a pattern's syllables a window within `limit` of it holds as written, at least:
    every other one costs CLOSE or more."""
    return n_syllables - int(max(limit, 0.0) / CLOSE + 1e-9)


def _anchors(pattern: tuple[str, ...], limit: float, positions: dict[str, tuple[int, ...]]) -> list[int]:
    """The offsets (text position − pattern position) from which a window within `limit` of
    `pattern`, `limit` of FULL or more, may be aligned: those where all but `limit / CLOSE` of its
    syllables are heard as written at offsets drifting up by `slack` = `limit / FULL` at most.

    An alignment within `limit` inserts and deletes `slack` syllables at most, so its drift
    (insertions − deletions so far) stays in a range `slack` wide that holds 0 (where it starts).
    Its syllables heard as written sit at that drift plus its start, and the lowest of them is an
    anchor: the window starts, and ends less the pattern's length, within `slack` of an anchor."""
    m = len(pattern)
    slack = int(limit // FULL)
    least = least_exact(m, limit)
    offsets, found = _offsets(pattern, positions)
    if found < least:
        return []
    out = []
    for d, exact in offsets.items():
        for e in range(1, slack + 1):
            exact += offsets.get(d + e, 0)
        if exact >= least:
            out.append(d)
    return out


def _offsets(pattern: tuple[str, ...], positions: dict[str, tuple[int, ...]]) -> tuple[dict[int, int], int]:
    """Per offset (text position − pattern position), how many of the pattern's syllables the text
    holds there as written; and how many such pairs there are in all."""
    offsets: dict[int, int] = {}
    found = 0
    for j, s in enumerate(pattern):
        at = positions.get(s)
        if at is not None:
            found += len(at)
            for t in at:
                offsets[t - j] = offsets.get(t - j, 0) + 1
    return offsets, found


def _without_gaps(text: Sequence[str], pattern: tuple[str, ...], limit: float, keep: frozenset[str],
                  positions: dict[str, tuple[int, ...]], anchored: bool, at_end: bool) -> list[tuple[int, int, float]]:
    """`search` within a budget under FULL: no syllable may be inserted or deleted, so a hit is a
    window as long as the pattern, at an offset where all but `limit / CLOSE` of its syllables are
    heard as written, costed syllable by syllable (the diagonal `distance` walks).  Its first and
    last syllables then cost at most the budget, under HALF's reach, as `search` asks."""
    m, n = len(pattern), len(text)
    least = least_exact(m, limit)
    need = (m + 1) // 2
    offsets, _found = _offsets(pattern, positions)
    out: list[tuple[int, int, float]] = []
    for d in sorted(d for d, exact in offsets.items() if exact >= least and 0 <= d <= n - m):
        if (anchored and d) or (at_end and d + m != n) or (out and d < out[-1][1]):
            continue
        window = tuple(text[d:d + m])
        spent = 0.0
        for x, y in zip(pattern, window):
            if x != y:
                spent += FULL if x in keep or y in keep else cost(x, y)
                if spent > limit + 1e-9:
                    break
        else:
            if _exact(pattern, window) >= need:
                out.append((d, d + m, spent))
    return out


@lru_cache(maxsize=65536)
def _distance_within(pattern: tuple[str, ...], window: tuple[str, ...], keep: frozenset[str], cutoff: float) -> float:
    """`distance`, remembered: the same phrases meet the same stretches of speech call after call."""
    return distance(pattern, window, keep, cutoff)


def syllables_at(text: Sequence[str]) -> tuple[frozenset[str], dict[str, tuple[int, ...]]]:
    """A text's syllables and where each occurs (a call's utterance is searched for many phrases)."""
    positions: dict[str, list[int]] = {}
    for i, s in enumerate(text):
        positions.setdefault(s, []).append(i)
    return frozenset(positions), {s: tuple(at) for s, at in positions.items()}


_heard = lru_cache(maxsize=1024)(syllables_at)  # for callers that keep no `heard` of their own


_NEAR: dict[str, tuple[set[str], set[str]]] = {}  # syllable → (syllables within HALF of it, others), as met


@lru_cache(maxsize=8192)
def _near(syllable: str, present: frozenset[str]) -> frozenset[str]:
    """The syllables of `present` that cost at most HALF against `syllable` (itself included)."""
    near, far = _NEAR.get(syllable) or _NEAR.setdefault(syllable, ({syllable}, set()))
    for s in present - near - far:
        (near if cost(s, syllable) <= HALF else far).add(s)
    return present & near


def _exact_hits(text: tuple[str, ...], pattern: tuple[str, ...], anchored: bool) -> list[tuple[int, int, float]]:
    """Windows with exactly the pattern's syllables (homophones), by string search."""
    hay = _joined(tuple(text))
    needle = "|" + "|".join(pattern) + "|"
    out: list[tuple[int, int, float]] = []
    pos = hay.find(needle)
    while pos >= 0:
        i = hay.count("|", 0, pos)
        if anchored and i:
            break
        out.append((i, i + len(pattern), 0.0))
        pos = hay.find(needle, pos + len(needle) - 1)
    return out


@lru_cache(maxsize=1024)
def _joined(text: tuple[str, ...]) -> str:
    return "|" + "|".join(text) + "|"


def _exact(pattern: tuple[str, ...], window: tuple[str, ...]) -> int:
    """How many of the pattern's syllables occur in the window as written (as a multiset)."""
    pool = list(window)
    n = 0
    for s in pattern:
        if s in pool:
            pool.remove(s)
            n += 1
    return n
