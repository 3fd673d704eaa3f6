from __future__ import annotations

import pytest

from qa_pipeline.scoring.normalize import to_pinyin
from qa_pipeline.scoring.phonetic import CLOSE, FULL, HALF, budget, cost, distance, search, split


def syl(text: str) -> tuple[str, ...]:
    return tuple(to_pinyin(text))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("shao", "shao", 0.0),
        ("shao", "shou", CLOSE),  # ao/ou: 稍 heard as 收
        ("zhi", "zi", CLOSE),  # zh/z
        ("shi", "si", CLOSE),  # sh/s
        ("nan", "lan", CLOSE),  # n/l
        ("jin", "jing", CLOSE),  # in/ing
        ("nin", "ni", CLOSE),  # 您/你: nasal coda dropped
        ("gui", "hui", CLOSE),  # g/h
        ("ke", "te", HALF),  # same final only
        ("gong", "gao", HALF),  # same initial only
        ("tou", "su", FULL),
        ("ju", "jv", 0.0),  # spelling of ü
        ("3", "san", FULL),  # a digit is itself
    ],
)
def test_syllable_costs(a, b, expected):
    assert cost(a, b) == expected == cost(b, a)


def test_split():
    assert split("zhang") == ("zh", "ang")
    assert split("an") == ("", "an")
    assert split("8") == ("8", "")


def test_distance_weights_confusions():
    assert distance(syl("稍等"), syl("收等")) == CLOSE
    assert distance(syl("规定就是这样"), syl("回定就是这样")) == CLOSE
    assert distance(syl("请您稍等"), syl("请您收走")) > budget(4)
    assert distance(syl("你等着"), syl("您等着"), frozenset({"nin"})) == FULL


def test_budget():
    assert [budget(n) for n in (1, 2, 3, 4, 7, 8, 12)] == [0, CLOSE, CLOSE, FULL, FULL, 2 * FULL, 2 * FULL]


def test_search_finds_windows_within_the_budget():
    text = syl("好的我帮您查一下请您收等")
    hits = search(text, syl("稍等"), budget(2))
    assert [(s, e) for s, e, _ in hits] == [(len(text) - 2, len(text))]
    assert search(syl("受损"), syl("稍等"), budget(2)) == []  # one close, one unrelated syllable
    assert search(syl("为您服务"), syl("喂"), 0.0, anchored=True) == [(0, 1, 0.0)]


# --- the pruning in `search` and `distance` changes nothing: checked against the plain algorithm ---

def plain_distance(a, b, keep=frozenset()):
    """The textbook weighted edit distance, every cell worked out."""
    prev = [float(j) for j in range(len(b) + 1)]
    for i, x in enumerate(a, 1):
        cur = [float(i)]
        for j, y in enumerate(b, 1):
            sub = cost(x, y) if not keep or x == y or (x not in keep and y not in keep) else FULL
            cur.append(min(prev[j] + FULL, cur[j - 1] + FULL, prev[j - 1] + sub))
        prev = cur
    return prev[-1]


def plain_search(text, pattern, limit, anchored=False, keep=frozenset(), at_end=False):
    """`search` as specified: every start near the first syllable, every length within the budget,
    a window ending near the last syllable with half the pattern heard as written."""
    m = len(pattern)
    if m == 0 or not text:
        return []
    if limit <= 0:  # homophones only, non-overlapping
        hits = []
        for i in [0] if anchored else range(len(text) - m + 1):
            if tuple(text[i:i + m]) == tuple(pattern) and not (hits and i < hits[-1][1]):
                hits.append((i, i + m, 0.0))
        return [h for h in hits if not at_end or h[1] == len(text)]
    need, slack = (m + 1) // 2, int(limit // FULL)
    out = []
    for i in ([0] if anchored else range(len(text))):
        if cost(text[i], pattern[0]) > HALF or (out and i < out[-1][1]):
            continue
        best = None
        for length in range(max(1, m - slack), m + slack + 1):
            window = tuple(text[i:i + length])
            if i + length > len(text):
                break
            pool = list(window)
            exact = sum(1 for s in pattern if s in pool and not pool.remove(s))
            if cost(window[-1], pattern[-1]) > HALF or exact < need or (at_end and i + length != len(text)):
                continue
            d = plain_distance(pattern, window, keep)
            if d <= limit + 1e-9 and (best is None or d < best[2]):
                best = (i, i + length, d)
        if best is not None:
            out.append(best)
    return out


def test_pruned_distance_and_search_agree_with_the_plain_ones():
    import random

    sentences = ["您好请问有什么可以帮您", "请您稍等我帮您查一下", "收等一下我给您看看", "规定就是这样没有办法",
                 "感谢您的耐心等待", "不好意思让您久等了", "工号三三零二为您服务", "还有什么可以帮您的吗",
                 "你们这个服务也太差了吧", "请问您的手机号是多少", "好的帮您登记了", "这个我们也没办法处理"]
    syllables = sorted({s for text in sentences for s in syl(text)})
    rng = random.Random(23)
    found = 0
    for _ in range(3000):
        text = syl(rng.choice(sentences) + rng.choice(sentences) + ("好的好的好的" if rng.random() < 0.1 else ""))
        if rng.random() < 0.5:  # Whisper's confusions: a few syllables swapped for others
            text = tuple(rng.choice(syllables) if rng.random() < 0.15 else s for s in text)
        start = rng.randrange(len(text))
        pattern = text[start:start + rng.randint(1, 9)]
        if rng.random() < 0.5:
            pattern = tuple(rng.choice(syllables) if rng.random() < 0.2 else s for s in pattern)
        keep = frozenset({"nin"}) if rng.random() < 0.3 else frozenset()
        anchored, at_end = rng.random() < 0.2, rng.random() < 0.2
        for limit in (0.0, CLOSE, HALF, FULL, 1.5 * FULL, 2 * FULL):
            got = search(text, pattern, limit, anchored=anchored, keep=keep, at_end=at_end)
            assert got == plain_search(text, pattern, limit, anchored, keep, at_end), (text, pattern, limit, anchored)
            found += bool(got)
            d = distance(pattern, text[:len(pattern) + 1], keep, cutoff=limit + 1e-9)
            exact = plain_distance(pattern, text[:len(pattern) + 1], keep)
            assert d == exact if exact <= limit + 1e-9 else d > limit + 1e-9
    assert found > 1000  # the comparison saw many hits, not only empty results


def test_only_equal_syllables_cost_nothing():
    """search's quick counts of syllables heard as written (phonetic._anchors, _without_gaps) rely on this: no two
    different toneless syllables that pypinyin writes cost 0 against each other."""
    from pypinyin import lazy_pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    written = sorted({s for cp in pinyin_dict for s in lazy_pinyin(chr(cp)) if s.isascii() and s.isalpha()})
    assert len(written) > 380
    assert [(a, b) for i, a in enumerate(written) for b in written[i + 1:] if cost(a, b) == 0] == []
