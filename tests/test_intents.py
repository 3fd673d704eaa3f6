"""The bundled intent model: loads without scikit-learn, scores like its training script says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_pipeline.scoring.intents import features, load_model, model_from_dict

ROOT = Path(__file__).resolve().parent.parent


def test_bundled_model_is_small_and_has_its_labels():
    path = ROOT / "qa_pipeline" / "scoring" / "data" / "intents.json"
    model = load_model()
    assert set(model.labels) == {"complaint", "improper"}
    assert path.stat().st_size < 700_000 * len(model.labels)  # plain JSON, a few hundred kB a label
    assert all(0.0 < label.threshold < 1.0 for label in model.labels.values())
    assert "yes" in model.trained_on


@pytest.mark.parametrize(("text", "improper"), [
    ("那是你自己没看说明书，跟我们有什么关系", True),
    ("卡是你自己弄丢的，找我们干什么", True),
    ("没问题，你把订单号报一下我帮你查", False),
    ("好的，你稍等一下，我这边帮你看看", False),
])
def test_improper_service_language(text, improper):
    assert load_model().says("improper", text)[0] is improper, text


@pytest.mark.parametrize(
    "text",
    ["我要投诉你们的快递员", "打了一上午电话都打不进来，你们怎么回事", "修了三次还是坏的，太不像话了"],
)
def test_complaints(text):
    assert load_model().says("complaint", text)[0], text


@pytest.mark.parametrize(
    "text",
    ["我想查一下这个月的账单", "好的，谢谢，再见", "我的手机号是一三八零零一二三四五六", "明天上午我在家"],
)
def test_not_complaints(text):
    assert not load_model().says("complaint", text)[0], text


def test_sound_alike_errors_keep_most_of_the_evidence():
    # 投诉 written as 头速 by the recogniser: the pinyin features still carry it
    model = load_model()
    assert model.probability("complaint", "我要头速你们") > model.probability("complaint", "我要查询你们")


def test_features_are_char_and_pinyin_ngrams():
    f = features("投诉")
    assert {"投", "投诉", "#投", "诉#", "p:tou su", "p:# tou"} <= set(f)
    assert len(f) == len(set(f))


def test_model_file_errors():
    with pytest.raises(ValueError, match="not an intent model"):
        model_from_dict({"labels": {"x": {"bias": 0}}})


def test_training_data_is_not_taken_from_the_dev_calls():
    """No training sentence repeats a dev-call customer turn (or 8 characters of one)."""
    lines = []
    for path in (ROOT / "training" / "intents").rglob("*.txt"):
        lines += [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip() and not x.startswith("#")]
    turns = []
    for corpus in ("dev-calls", "dev-calls-2"):
        labels = ROOT.parent / "shared" / corpus / "labels.json"
        if labels.is_file():
            turns += [t["text"] for lab in json.loads(labels.read_text(encoding="utf-8")).values() for t in lab["turns"]]
    if not turns:
        pytest.skip("../shared dev calls not present")
    from qa_pipeline.scoring.normalize import normalize_text

    norm_turns = [normalize_text(t) for t in turns]
    for line in lines:
        n = normalize_text(line)
        grams = {n[i : i + 8] for i in range(len(n) - 7)}
        assert not any(g in t for g in grams for t in norm_turns), line


def test_a_remembered_probability_is_the_one_computed_afresh():
    from qa_pipeline.scoring.intents import _probability
    from qa_pipeline.scoring.matching import prepare

    model = load_model()
    for text in ("你们的服务也太差了，我要投诉", "我想查一下上个月的账单", "等了半个小时都没人管"):
        prep = prepare(text)
        for label in model.labels:
            fresh = _probability(model.labels[label], features(prep.norm, prep.pinyin))
            # first asked with the scorer's prepared text, then as the mood stage asks (text alone)
            assert model.probability(label, text, norm=prep.norm, pinyin=prep.pinyin) == fresh
            assert model.probability(label, text) == fresh
            assert model.labels[label].seen[prep.norm] == fresh
