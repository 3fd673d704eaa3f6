from __future__ import annotations

import pytest

from qa_pipeline.scoring.normalize import normalize_text, normalize_with_map, to_pinyin, to_simplified


def test_to_simplified():
    assert to_simplified("請問有什麼可以幫您") == "请问有什么可以帮您"
    assert to_simplified("") == ""


def test_punctuation_width_and_case():
    assert normalize_text("您好，ＡＢＣ！ Hello?　") == "您好abchello"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("一三九，零五七二，八八四六", "13905728846"),
        ("139,0572,8846", "13905728846"),
        ("139-0572-8846", "13905728846"),
        ("工号幺零零一", "工号1001"),
        ("五零三", "503"),
        ("1三9", "139"),
        ("两三天", "23天"),
    ],
)
def test_digit_strings(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize("word", ["一下", "一直", "零售价", "不一定", "一样", "万一", "第一", "两个", "二单元"])
def test_words_with_numerals_are_kept(word):
    assert normalize_text(word) == word


def test_punctuation_ends_a_numeral_run():
    assert normalize_text("八八四六，一下") == "8846一下"


def test_both_spellings_of_a_number_match():
    assert normalize_text("手机号是一三八") == normalize_text("手機號是138")


def test_map_points_back_into_the_original():
    text = "您好，這裡是天聯"
    norm, index = normalize_with_map(text)
    assert norm == "您好这里是天联"
    assert len(index) == len(norm)
    assert [text[i] for i in index][2:] == list("這裡是天聯")


def test_pinyin_one_syllable_per_character():
    assert to_pinyin("还有139") == ["hai", "you", "yi", "san", "jiu"]
    assert to_pinyin("工号") == to_pinyin("公号") == to_pinyin("功耗") == ["gong", "hao"]
    assert to_pinyin("ab") == ["a", "b"]


def test_variant_characters_fold():
    assert normalize_text("你等著") == normalize_text("你等着")
    assert normalize_text("到帳") == normalize_text("到账")


def test_pinyin_reads_each_word_as_pypinyin_reads_the_sentence():
    """to_pinyin converts pypinyin's words one at a time (and remembers them): the readings must be
    the ones lazy_pinyin gives the whole sentence, polyphones in context included."""
    import random

    from pypinyin import lazy_pinyin

    sentences = ["还有什么可以帮您", "银行行长说重庆的长城很长", "我还没还钱", "重新查一下您的重要信息",
                 "这个地方的地道小吃", "便宜的方便面", "了解了一下就好了", "我们都会处理的都是", "请您稍等",
                 "给您打电话是想了解一下", "乐队的音乐让人快乐", "朝阳区的朝代"]
    rng = random.Random(7)
    chars = "".join(sentences)
    sentences += ["".join(rng.choice(chars) for _ in range(rng.randint(1, 30))) for _ in range(300)]
    for sentence in sentences:
        assert to_pinyin(sentence) == lazy_pinyin(sentence), sentence
    assert to_pinyin("银行行长")[:2] == ["yin", "hang"] and to_pinyin("还有") == ["hai", "you"]
