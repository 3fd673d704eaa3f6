from __future__ import annotations

import pytest

from qa_pipeline.scoring.matching import (
    BY_PINYIN,
    BY_TEXT,
    NEAR,
    REGEX,
    match_cue,
    variants,
    default_tolerance,
    find_all,
    find_first,
    match_text,
    parse_phrase,
    prepare,
)


def test_exact_match_with_offsets_into_the_original():
    text = "你好，這裡是天連寬帶客服熱線"
    m = match_text(text, "客服热线")
    assert m is not None and m.how == BY_TEXT
    assert text[m.start : m.end] == "客服熱線" == m.text


@pytest.mark.parametrize(
    ("text", "phrase", "heard"),
    [
        ("我是公號1011的客服小王", "工号", "公號"),
        ("我是功耗1011的客服", "工号", "功耗"),
        ("宫号一零零一", "工号", "宫号"),
        ("我是克服小王", "客服", "克服"),
        ("很抱歉讓您就等了", "让您久等了", "讓您就等了"),
        ("好的就等了", "久等", "就等"),
        ("为,优选商城客服中心", "^喂", "为"),
        ("感谢您的来订,祝您生活愉快", "感谢您的来电", "感谢您的来订"),
        ("请您收等一下", "稍等", "收等"),
        ("麻烦您商后", "稍候", "商后"),
        ("欢迎这店安泰燃气", "欢迎致电", "欢迎这店"),
    ],
)
def test_whisper_variants_match_by_sound(text, phrase, heard):
    m = match_text(text, phrase)
    assert m is not None, (text, phrase)
    assert m.how == BY_PINYIN
    assert m.text == heard


def test_budget_grows_with_the_phrase():
    assert default_tolerance(1) == 0 and default_tolerance(2) == 0.5 and default_tolerance(4) == 1
    assert default_tolerance(8) == 2


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("这个我们不归我们管", "不归我管"),  # 我/我们
        ("这个我也没办法", "我们也没有办法"),  # 我们/我, 没有/没
        ("请问有什么可以帮你", "请问有什么可以帮您"),  # 你/您
        ("那个不归我管", "这个不归我管"),  # 这个/那个
        ("你等着", "你等着吧"),  # particles
    ],
)
def test_meaning_variants_match_as_text(text, phrase):
    m = match_text(text, phrase)
    assert m is not None and m.how == BY_TEXT, (text, phrase)


def test_variants_keep_short_tags_whole():
    # 是吧 without its particle would be 是, which every utterance says
    assert match_text("我也是这么想的", "=是吧") is None
    assert match_text("放门口了，是吧", "=是吧").how == BY_TEXT
    assert "让您久等" in variants("让您久等了")


def test_strict_you_keeps_nin():
    p = prepare("你好，这里是客服中心")
    assert find_all(p, parse_phrase("您好"))  # lenient: 你好 counts
    assert not find_all(p, parse_phrase("您好"), strict_you=True)
    assert find_all(prepare("您好"), parse_phrase("您好"), strict_you=True)


def test_near_phrase_any_order_within_a_span():
    p = parse_phrase("什么…帮")
    assert p.kind == NEAR and len(p.parts) == 2
    assert match_text("请问您需要我帮您做什么", "什么…帮") is not None
    assert match_text("请问您遇到什么问题", "什么…问题").text == "什么问题"
    assert match_text("什么时候到的，我们这边再查查看是否有人能够来帮", "什么…帮") is None  # too far apart


def test_sound_budget_does_not_let_unrelated_phrases_through():
    assert match_text("明天上午我在家", "投诉") is None
    assert match_text("你错了我的意思", "我错了") is None  # 你/我 is not a confusion
    assert match_text("规定就是这样", "规定就是这样").how == BY_TEXT
    assert match_text("回定就是这样", "规定就是这样").how == BY_PINYIN  # g/h, one close confusion


def test_tolerance_override():
    assert match_text("我们也有办法", "我们也没有办法") is not None
    assert match_text("我们也有办法", "我们也没有办法", tolerance=0) is None


def test_speaker_cues_match_as_before():
    assert match_cue("我是公號1011的客服小王", "工号")  # homophone
    assert not match_cue("你好", "您好")  # no variants, no confusions for telling speakers apart
    assert match_cue("请问有什么可以帮你", "有什么可以帮")


def test_anchor_only_at_start():
    assert match_text("很高兴为您服务", "^喂") is None
    assert match_text("喂，你好", "^喂").how == BY_TEXT


def test_a_phrase_at_the_end_is_heard_by_sound_there_only():
    assert match_text("是用在德国留学，对班。", "对吧$").how == BY_PINYIN  # 对吧 as Whisper heard it
    assert match_text("那就先这样，对吧", "对吧$").how == BY_TEXT
    assert match_text("对半分吧", "对吧$") is None  # inside the utterance: not at its end
    assert match_text("对吧，那我给您登记上", "对吧$") is None
    with pytest.raises(ValueError, match="cannot be anchored"):
        parse_phrase("还有…吗$")


def test_text_only_phrase():
    assert match_text("这里在检修线路", "=再见") is None
    assert match_text("这里在检修线路", "再见").how == BY_PINYIN
    assert match_text("好的再见", "=再见").how == BY_TEXT


def test_single_syllable_is_text_only_unless_anchored():
    assert match_text("麻烦您", "烦") is not None  # text
    assert match_text("反正", "烦") is None


def test_regex_on_normalised_text():
    p = parse_phrase(r"re:工号\d{4}")
    assert p.kind == REGEX
    m = find_all(prepare("我是工号一零零一的客服"), p)
    assert len(m) == 1 and m[0].text == "工号一零零一"


def test_all_occurrences_and_first():
    p = prepare("再见，再见")
    assert [m.start for m in find_all(p, parse_phrase("再见"))] == [0, 3]
    first = find_first(prepare("请稍等，让您久等了"), (parse_phrase("久等"), parse_phrase("稍等")))
    assert first.phrase == "稍等"


@pytest.mark.parametrize("bad", ["", "   ", "re:(", "，。"])
def test_bad_phrases(bad):
    with pytest.raises(ValueError):
        parse_phrase(bad)


def test_no_false_match_on_unrelated_text():
    assert match_text("您所在的小区上午在检修线路", "感谢您的来电") is None
    assert match_text("好的请问还有什么可以帮您", "我们也没有办法") is None


def _phrase_tuples(node, seen=None) -> list[tuple]:
    """Every tuple of phrases inside a rubric's records (items, checks, when-clauses)."""
    import dataclasses

    from qa_pipeline.scoring.matching import Phrase

    out = []
    if isinstance(node, tuple) and node and all(isinstance(x, Phrase) for x in node):
        return [node]
    if isinstance(node, (tuple, list)):
        for x in node:
            out += _phrase_tuples(x)
    elif dataclasses.is_dataclass(node) and not isinstance(node, (type, Phrase)):
        for f in dataclasses.fields(node):
            out += _phrase_tuples(getattr(node, f.name))
    return out


def test_the_phrase_index_never_rules_out_a_phrase_find_all_finds():
    """`possible` is only a quicker no: on real turns and on the same turns with syllables heard
    wrong, every phrase of the default rubric that find_all finds (by text or by sound, at every
    tolerance the checks use) is among those it lets through, and it rules out most of the others."""
    import json
    import random
    from pathlib import Path

    from qa_pipeline.scoring.matching import phrase_index, possible
    from qa_pipeline.scoring.rubric import load_rubric, rubric_path_default

    rubric = load_rubric(rubric_path_default())
    groups = list(dict.fromkeys(_phrase_tuples(rubric.items), None))
    groups += [i.check.listed for i in rubric.items if i.check.type == "forbidden"]
    assert len(groups) > 20
    labels = json.loads((Path(__file__).parent / "data" / "dev_labels.json").read_text(encoding="utf-8"))
    turns = [t["text"] for label in labels.values() for t in label["turns"]]
    rng = random.Random(5)
    alphabet = "".join(sorted({ch for t in turns for ch in t if "\u4e00" <= ch <= "\u9fff"}))
    garbled = ["".join(rng.choice(alphabet) if rng.random() < 0.12 else ch for ch in t) for t in turns]
    texts = [prepare(t) for t in turns + garbled]
    searched = ruled_out = found = 0
    for phrases in groups:
        for tolerance, strict_you in ((None, False), (0, False), (0, True), (1.0, False)):
            index = phrase_index(phrases, strict_you, tolerance)
            for p in texts:
                allowed = set(possible(index, p))
                for n, phrase in enumerate(phrases):
                    hits = find_all(p, phrase, tolerance=tolerance, strict_you=strict_you)
                    searched += 1
                    found += bool(hits)
                    ruled_out += n not in allowed
                    assert not hits or n in allowed, (phrase.source, p.original, tolerance, strict_you)
    assert found > 1000 and ruled_out > searched * 0.8, (found, ruled_out, searched)
