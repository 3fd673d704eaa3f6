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
