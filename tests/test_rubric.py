from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from qa_pipeline.scoring.rubric import (
    ForbiddenCheck,
    HangupCheck,
    PhraseCheck,
    RubricError,
    load_rubric,
    rubric_path_default,
)

LABELLED_ITEMS = [
    "greeting", "self_introduction", "ask_need", "confirm_details", "hold_etiquette", "apology",
    "forbidden_phrases", "closing", "customer_hangs_up_first",
]  # fmt: skip


def test_default_rubric_loads():
    r = load_rubric(rubric_path_default())
    ids = [i.id for i in r.items]
    assert ids == LABELLED_ITEMS + ["dead_air", "interruption", "speech_rate"]
    assert sum(i.weight for i in r.items) == 100
    assert all(i.source for i in r.items)
    greeting = r.items[0].check
    assert isinstance(greeting, PhraseCheck)
    assert greeting.window.first_turns == 1 and greeting.window.first_seconds == 10
    assert [p.source for p in greeting.none] == ["^喂"]
    forbidden = next(i.check for i in r.items if i.id == "forbidden_phrases")
    assert isinstance(forbidden, ForbiddenCheck)
    assert {f.phrase.source for f in forbidden.phrases if f.critical} == {"我们也没有办法", "这是规定", "规定就是这样",
                                                                         "就是这么规定的"}
    assert isinstance(r.items[8].check, HangupCheck)


GOOD = """\
id: t
name: test
version: 1
language: zh
pass_score: 80
items:
  - id: greeting
    name: greeting
    weight: 5
    speaker: agent
    check:
      type: phrase
      window: {first_seconds: 10}
      any: [您好]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(RubricError) as e:
        load_rubric(path)
    msg = str(e.value)
    assert "\n" not in msg
    return msg.removeprefix(f"{path}:")


def test_good_minimal(tmp_path):
    r = load_rubric(_write(tmp_path, GOOD))
    assert r.version == "1" and r.items[0].critical is False


def test_missing_top_field(tmp_path):
    msg = _error(tmp_path, GOOD.replace("pass_score: 80\n", ""))
    assert msg == "1: rubric: missing 'pass_score'"


def test_missing_item_field(tmp_path):
    msg = _error(tmp_path, GOOD.replace("    weight: 5\n", ""))
    assert msg == "7: item 'greeting': missing 'weight'"


def test_unknown_check_type(tmp_path):
    msg = _error(tmp_path, GOOD.replace("type: phrase", "type: keyword"))
    assert msg.startswith("12: item 'greeting': unknown check type 'keyword' (allowed: phrase, introduction, confirmation,")


def test_bad_speaker(tmp_path):
    msg = _error(tmp_path, GOOD.replace("speaker: agent", "speaker: bot"))
    assert msg == "10: item 'greeting': speaker: 'bot' is not allowed (allowed: agent, customer, any)"


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("{first_minutes: 1}", "13: item 'greeting': phrase check: window: unknown key 'first_minutes' (allowed: "),
        ("{first_seconds: -3}", "13: item 'greeting': phrase check: window first_seconds must be > 0"),
        ("{first_seconds: 5, last_seconds: 5}", "13: item 'greeting': phrase check: window takes first_seconds or"),
        ("{first_turns: 1.5}", "13: item 'greeting': phrase check: window first_turns must be an integer"),
        ("[10]", "13: item 'greeting': phrase check: window must be a mapping"),
        ("{}", "13: item 'greeting': phrase check: window is empty (allowed: "),
        ("{outbound_first_seconds: 30}", "13: item 'greeting': phrase check: window outbound_first_seconds needs "
                                         "first_seconds"),
        ("{first_seconds: 20, outbound_first_seconds: 0}",
         "13: item 'greeting': phrase check: window outbound_first_seconds must be > 0"),
    ],
)
def test_bad_window(tmp_path, window, expected):
    msg = _error(tmp_path, GOOD.replace("{first_seconds: 10}", window))
    assert msg.startswith(expected), msg


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("weight: 5", "weight: five", "9: item 'greeting': weight must be a number"),
        ("weight: 5", "weight: true", "9: item 'greeting': weight must be a number"),
        ("speaker: agent", "critical: yes please", "10: item 'greeting': critical must be true or false"),
        ("any: [您好]", "any: 您好", "14: item 'greeting': phrase check: any must be a non-empty list of phrases"),
        ("any: [您好]", "any: [re:(]", "14: item 'greeting': phrase check: any: bad regular expression"),
        ("pass_score: 80", "pass_score: 120", "5: pass_score must be <= 100"),
        ("pass_score: 80", "pass_score: high", "5: pass_score must be a number"),
        ("items:", "colour: red\nitems:", "6: rubric: unknown key 'colour' (allowed: "),
        ("    name: greeting\n", "    name: greeting\n    nmae: x\n", "9: item 'greeting': unknown key 'nmae' (allowed: "),
        ("type: phrase", "type: phrase\n      every: [x]", "13: item 'greeting': phrase check: unknown key 'every'"),
    ],
)
def test_wrong_types_and_keys(tmp_path, old, new, expected):
    msg = _error(tmp_path, GOOD.replace(old, new))
    assert msg.startswith(expected), msg


def test_duplicate_item_id(tmp_path):
    dup = GOOD + GOOD[GOOD.index("  - id: greeting") :]
    msg = _error(tmp_path, dup)
    assert msg == "15: duplicate item id 'greeting'"


def test_check_without_type(tmp_path):
    msg = _error(tmp_path, GOOD.replace("      type: phrase\n", ""))
    assert msg.startswith("12: item 'greeting': check: missing 'type' (allowed: phrase,")


def test_phrase_check_needs_phrases(tmp_path):
    msg = _error(tmp_path, GOOD.replace("      any: [您好]\n", ""))
    assert msg == "12: item 'greeting': phrase check: a phrase check needs any, all or none"


def test_forbidden_entry(tmp_path):
    text = GOOD.replace(
        "      type: phrase\n      window: {first_seconds: 10}\n      any: [您好]\n",
        "      type: forbidden\n      phrases:\n        - 你等着\n        - {phrase: 这是规定, critical: maybe}\n",
    )
    msg = _error(tmp_path, text)
    assert msg == "15: item 'greeting': forbidden check: critical must be true or false"


def test_when_needs_a_trigger(tmp_path):
    text = GOOD.replace("    check:", "    when: {reason: no complaint}\n    check:")
    msg = _error(tmp_path, text)
    assert msg.startswith("11: item 'greeting': when needs a trigger (allowed: customer_says")


def test_yaml_syntax_error(tmp_path):
    msg = _error(tmp_path, GOOD.replace("any: [您好]", "any: [您好"))
    assert msg.startswith("15: not valid YAML")


def test_missing_file(tmp_path):
    with pytest.raises(RubricError) as e:
        load_rubric(tmp_path / "nope.yaml")
    assert str(e.value).startswith(f"{tmp_path / 'nope.yaml'}:0: cannot read rubric")


def test_hotwords_are_the_expected_phrases_not_the_forbidden_ones():
    from qa_pipeline.scoring.rubric import load_rubric, rubric_hotwords, rubric_path_default

    words = rubric_hotwords(load_rubric(rubric_path_default())).split("，")
    assert "您好" in words and "工号" in words and "确认一下" in words
    assert "这个不归我管" not in words and "你等着" not in words
    assert len("，".join(words)) <= 120


# --- fields added for meaning-level checks: each refused with its file and line ---------------

INTRO_ITEM = """\
  - id: intro
    name: intro
    weight: 5
    check:
      type: introduction
      company: [这里是]
      organisations: [物业]
      self: [工号]
"""


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("language: zh", "language: fr", "4: language: 'fr' is not allowed (allowed: zh, en)"),
        ("      any: [您好]", "      any: [您好]\n      strict_you: sometimes", "15: item 'greeting': phrase check: strict_you must be true or false"),
        ("      any: [您好]", "      any: [您好]\n      tolerance: lots", "15: item 'greeting': phrase check: tolerance must be a number"),
        ("      any: [您好]", "      any: [什么…]", "14: item 'greeting': phrase check: any: phrase '什么…': a …-phrase needs two parts or more"),
        ("      any: [您好]", "      any: ['^什么…帮']", "14: item 'greeting': phrase check: any: phrase '^什么…帮': a …-phrase cannot be anchored"),
    ],
)
def test_new_phrase_fields(tmp_path, old, new, expected):
    msg = _error(tmp_path, GOOD.replace(old, new))
    assert msg.startswith(expected), msg


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("      self: [工号]\n", "", "19: item 'intro': introduction check: needs self and company or organisations"),
        ("self: [工号]", "self: 工号", "22: item 'intro': introduction check: self must be a non-empty list of phrases"),
        ("self: [工号]", "self: [工号]\n      use_metadata: 1", "23: item 'intro': introduction check: use_metadata must be true or false"),
        ("self: [工号]", "self: [工号]\n      agent: [我是]", "23: item 'intro': introduction check: unknown key 'agent' (allowed: "),
    ],
)
def test_introduction_fields(tmp_path, old, new, expected):
    msg = _error(tmp_path, (GOOD + INTRO_ITEM).replace(old, new))
    assert msg.startswith(expected), msg


def test_introduction_loads(tmp_path):
    r = load_rubric(_write(tmp_path, GOOD + INTRO_ITEM))
    c = r.items[1].check
    assert [p.source for p in c.self] == ["工号"] and c.use_metadata and c.window.first_seconds == 20


def _confirm(extra: str) -> str:
    return GOOD + f"""\
  - id: confirm
    name: confirm
    weight: 5
    check:
      type: confirmation
      phrases: [确认一下]
{extra}"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("      given: everything\n", "21: item 'confirm': confirmation check: given: 'everything' is not allowed (allowed: numbers, details)"),
        ("      min_detail_chars: 0\n", "21: item 'confirm': confirmation check: min_detail_chars must be >= 1"),
        ("      read_back_syllables: two\n", "21: item 'confirm': confirmation check: read_back_syllables must be an integer"),
    ],
)
def test_confirmation_fields(tmp_path, extra, expected):
    msg = _error(tmp_path, _confirm(extra))
    assert msg.startswith(expected), msg


def test_when_customer_intent(tmp_path):
    ok = GOOD.replace("    check:", "    when: {customer_intent: [complaint]}\n    check:")
    assert load_rubric(_write(tmp_path, ok)).items[0].when.customer_intent == ("complaint",)
    bad = GOOD.replace("    check:", "    when: {customer_intent: [anger]}\n    check:")
    assert _error(tmp_path, bad) == "11: item 'greeting': when customer_intent: 'anger' is not allowed (allowed: complaint)"
    agent_side = GOOD.replace("    check:", "    when: {customer_intent: [improper]}\n    check:")  # the agent's label
    assert _error(tmp_path, agent_side) == "11: item 'greeting': when customer_intent: 'improper' is not allowed (allowed: complaint)"


def test_forbidden_unless(tmp_path):
    text = GOOD.replace(
        "      type: phrase\n      window: {first_seconds: 10}\n      any: [您好]\n",
        "      type: forbidden\n      phrases:\n        - {phrase: 你再说一遍, unless: 请你再说一遍}\n",
    )
    assert _error(tmp_path, text) == "14: item 'greeting': forbidden check: unless must be a non-empty list of phrases"
    ok = load_rubric(_write(tmp_path, text.replace("unless: 请你再说一遍", "unless: [请你再说一遍]")))
    assert [p.source for p in ok.items[0].check.phrases[0].unless] == ["请你再说一遍"]


CENTRE = """\
centre:
  companies:
    - {name: 锦园物业, aliases: [锦园], teams: [物业组]}
    - 明光供电
"""


def test_centre_and_extends(tmp_path):
    base = _write(tmp_path, GOOD + CENTRE)
    r = load_rubric(base)
    assert [c.name for c in r.centre.companies] == ["锦园物业", "明光供电"]
    assert r.centre.companies[0].names == ("锦园物业", "锦园") and r.centre.companies[0].teams == ("物业组",)
    child = tmp_path / "centre.yaml"
    child.write_text("extends: r.yaml\nid: child\n" + CENTRE.replace("明光供电", "清源水务"), encoding="utf-8")
    c = load_rubric(child)
    assert c.id == "child" and c.items == r.items and c.language == "zh"
    assert [x.name for x in c.centre.companies][-1] == "清源水务"
    assert c.digest != r.digest
    on_default = tmp_path / "d.yaml"
    on_default.write_text("extends: default\n" + CENTRE, encoding="utf-8")
    d = load_rubric(on_default)
    assert d.id == "default.zh" and len(d.items) == 12 and d.centre.companies


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("extends: missing.yaml\n", "1: extends: cannot read "),
        ("extends: x.yaml\n", "1: extends: x.yaml extends this file again (a cycle)"),
        ("extends: default\ncentre: {companies: []}\n", "2: centre: companies must be a non-empty list"),
        ("extends: default\ncentre: {companies: [{aliases: [x]}]}\n", "2: centre: company: missing 'name'"),
        ("extends: default\ncentre: {companies: [{name: 甲, teams: 乙}]}\n", "2: centre: company '甲': teams must be a non-empty list"),
        ("extends: default\ncentre: {firms: []}\n", "2: centre: unknown key 'firms' (allowed: "),
    ],
)
def test_centre_errors(tmp_path, text, expected):
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RubricError) as e:
        load_rubric(path)
    assert str(e.value).removeprefix(f"{path}:").startswith(expected), str(e.value)


def test_a_base_rubric_that_is_not_utf8_is_one_line(tmp_path):
    (tmp_path / "gbk.yaml").write_bytes("id: 客服\n".encode("gbk"))
    path = tmp_path / "x.yaml"
    path.write_text("extends: gbk.yaml\n", encoding="utf-8")
    with pytest.raises(RubricError, match=r"x\.yaml:1: extends: .*gbk\.yaml is not UTF-8 text"):
        load_rubric(path)


def test_centre_file_for_dev_calls_2_is_valid():
    root = Path(__file__).resolve().parent.parent
    for name in ("dev-calls-2.yaml", "dev-calls.yaml"):
        r = load_rubric(root / "bench" / "centres" / name)
        assert r.centre.companies and all(c.teams for c in r.centre.companies)


# --------------------------------------------------------------------------- hostile rubrics (issue 12)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("weight: 5", "weight: .nan", "9: item 'greeting': weight must be a finite number, not nan"),
        ("weight: 5", "weight: .inf", "9: item 'greeting': weight must be a finite number, not inf"),
        ("weight: 5", "weight: 1.0e+308", "9: item 'greeting': weight must be <= 100000"),
        ("pass_score: 80", "pass_score: .nan", "5: pass_score must be a finite number, not nan"),
        ("pass_score: 80", "pass_score: -.inf", "5: pass_score must be a finite number, not -inf"),
        ("{first_seconds: 10}", "{first_seconds: .nan}", "13: item 'greeting': phrase check: window first_seconds must be a finite"),
        ("weight: 5", "weight: !!float abc", "9: 'abc' is not a valid !!float"),
        ("weight: 5", "weight: !!int 0xZZ", "9: '0xZZ' is not a valid !!int"),
        ("name: test", 'name: !!binary "not base64 !!"', "2: 'not base64 !!' is not a valid !!binary"),
        ("any: [您好]", 'any: [!!binary "not base64 !!"]', "14: 'not base64 !!' is not a valid !!binary"),
        ("weight: 5", "weight: !!timestamp yesterday", "9: 'yesterday' is not a valid !!timestamp"),
        ("any: [您好]", "any: ['re:(a)\\1']", "14: item 'greeting': phrase check: any: bad regular expression '(a)\\\\1': invalid escape"),
        ("any: [您好]", "any: ['re:(?=您)好']", "14: item 'greeting': phrase check: any: bad regular expression"),
    ],
)
def test_numbers_must_be_finite_and_values_readable(tmp_path, old, new, expected):
    msg = _error(tmp_path, GOOD.replace(old, new))
    assert msg.startswith(expected), msg


def test_two_huge_weights_cannot_overflow_the_score(tmp_path):
    second = GOOD[GOOD.index("  - id: greeting"):].replace("greeting", "closing")
    text = (GOOD + second).replace("weight: 5", "weight: 1.0e+308")
    assert "weight must be <= 100000" in _error(tmp_path, text)


def test_a_catastrophic_regex_runs_in_linear_time(tmp_path):
    """`re:(.*.*)*!` passed the check and then hung `qa score`; on RE2 it is linear."""
    import time

    from qa_pipeline.scoring.matching import find_all, prepare

    rubric = load_rubric(_write(tmp_path, GOOD.replace("any: [您好]", "any: ['re:(.*.*)*!', 're:(a|aa)+$']")))
    text = prepare("您好请问有什么可以帮您" * 200 + "啊")
    t0 = time.monotonic()
    for phrase in rubric.items[0].check.any:
        assert find_all(text, phrase) == ()
    assert time.monotonic() - t0 < 1.0


def test_re2_finds_what_the_rubric_means(tmp_path):
    from qa_pipeline.scoring.matching import find_all, prepare

    rubric = load_rubric(_write(tmp_path, GOOD.replace("any: [您好]", "any: ['re:工号\\d{3,}']")))
    (hit,) = find_all(prepare("您好，我的工号是一零零一，工号1001为您服务"), rubric.items[0].check.any[0])
    assert hit.text == "工号1001" and hit.start == 13


def test_outbound_phrases_need_the_phrases_of_every_call(tmp_path):
    msg = _error(tmp_path, GOOD.replace("      any:", "      outbound_any: [=可以吗]\n      all:"))
    assert msg.endswith("item 'greeting': phrase check: outbound_any adds to any; give any too"), msg
