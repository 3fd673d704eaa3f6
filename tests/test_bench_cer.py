"""Unit tests of the CER and turn-coverage helpers of bench/transcription.py (no model, no audio)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "bench" / "transcription.py"
_spec = importlib.util.spec_from_file_location("bench_transcription", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_transcription"] = bench  # dataclasses look their module up while the class is built
_spec.loader.exec_module(bench)

Span, Turn = bench.Span, bench.Turn


# --------------------------------------------------------------------------- edit distance and CER


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [
        ("", "", 0),
        ("abc", "abc", 0),
        ("abc", "", 3),
        ("", "ab", 2),
        ("可以", "可疑", 1),  # one substitution
        ("工号一零零一", "公号一零零", 2),  # substitution + deletion
        ("您好", "您您好", 1),  # insertion
        ("kitten", "sitting", 3),
    ],
)
def test_levenshtein_both_implementations(ref, hyp, expected):
    assert bench.levenshtein(ref, hyp) == expected
    assert bench._dp_levenshtein(ref, hyp) == expected


def test_cer_is_distance_over_reference_length():
    assert bench.cer("请问有什么可以帮您", "请问有什么可疑帮您") == pytest.approx(1 / 9)
    assert bench.cer("对", "") == 1.0
    assert bench.cer("对", "对对对") == 2.0  # insertions can push CER above 1
    assert bench.cer("", "") is None
    assert bench.cer("", "x") == float("inf")


def test_pooled_cer_sums_distances_and_reference_lengths():
    total = bench.pooled([bench.score("abcd", "abcx"), bench.score("ab", "")])  # 1/4 and 2/2
    assert (total.distance, total.ref_len) == (3, 6)
    assert total.cer == pytest.approx(0.5)  # not the mean of 0.25 and 1.0


def test_texts_are_normalised_piece_by_piece_before_scoring():
    ref = bench.normalise_join(["您好，工号一零零一。", "請問有什麼可以幫您？"])
    hyp = bench.normalise_join(["您好,工号1001", "请问有什么可以帮您"])
    assert ref == "您好工号1001请问有什么可以帮您"
    assert bench.cer(ref, hyp) == 0.0


@pytest.mark.parametrize(("ref", "hyp"), [("可以帮您", "可疑帮你呢"), ("abc", ""), ("", "xy"), ("工号一零", "公號10")])
def test_edit_ops_add_up_to_the_distance(ref, hyp):
    s, d, i, subs = bench.edit_ops(ref, hyp)
    assert s + d + i == bench.levenshtein(ref, hyp)
    assert sum(subs.values()) == s


def test_edit_ops_name_the_substitution():
    s, d, i, subs = bench.edit_ops("可以帮您", "可疑帮您")
    assert (s, d, i) == (1, 0, 0)
    assert subs == {("以", "疑"): 1}


def test_lcs_both_implementations():
    assert bench.lcs_length("对的", "所以对") == 1
    assert bench._dp_lcs("对的", "所以对") == 1
    assert bench.lcs_length("请您稍等", "好的请您稍等一下") == 4
    assert bench._dp_lcs("请您稍等", "好的请您稍等一下") == 4


# --------------------------------------------------------------------------- turn coverage


def test_covered_seconds_is_the_union_of_overlaps():
    spans = [Span(0.0, 2.0, ""), Span(1.0, 3.0, ""), Span(5.0, 9.0, "")]
    assert bench.covered_seconds(1.5, 6.0, spans) == pytest.approx(1.5 + 1.0)
    assert bench.covered_seconds(3.0, 5.0, spans) == 0.0  # touching ends do not overlap


def test_turn_found_by_time_overlap_even_with_other_words():
    turn = Turn("agent", 10.0, 12.0, "请您稍等")
    cov = bench.turn_coverage([turn], [Span(10.9, 13.0, "完全不同")])
    assert cov[0]["time_frac"] == pytest.approx(0.55)
    assert cov[0]["found"]


def test_turn_split_over_two_utterances_is_found_by_their_union():
    turn = Turn("agent", 0.0, 10.0, "一句很长的话")
    spans = [Span(0.0, 4.0, "x"), Span(5.5, 10.0, "y")]  # 40 % and 45 % apart, 85 % together
    assert bench.turn_coverage([turn], spans)[0]["found"]


def test_turn_found_by_its_words_when_the_times_are_off():
    turn = Turn("customer", 20.0, 22.0, "我的宽带上不了网")
    spans = [Span(22.5, 25.0, "我的宽带上不了网了")]  # after the turn, within the window
    cov = bench.turn_coverage([turn], spans)[0]
    assert cov["time_frac"] == 0.0
    assert cov["text_frac"] == 1.0
    assert cov["found"]


def test_text_outside_the_window_does_not_count():
    turn = Turn("customer", 20.0, 22.0, "我的宽带上不了网")
    spans = [Span(30.0, 32.0, "我的宽带上不了网")]
    cov = bench.turn_coverage([turn], spans, window_s=1.0)[0]
    assert (cov["time_frac"], cov["text_frac"], cov["found"]) == (0.0, 0.0, False)
    assert bench.lost_turns([cov]) == [cov]


def test_partial_cover_below_half_is_lost():
    turn = Turn("customer", 0.0, 1.0, "对的")
    cov = bench.turn_coverage([turn], [Span(0.7, 1.5, "所以")])[0]  # 30 % in time, no shared character
    assert cov["time_frac"] == pytest.approx(0.3)
    assert cov["text_frac"] == 0.0
    assert not cov["found"]


def test_stereo_coverage_counts_only_the_speakers_channel():
    turns = [Turn("agent", 0.0, 2.0, "您好"), Turn("customer", 3.0, 4.0, "对")]
    spans = [Span(0.0, 2.0, "您好", channel=1), Span(3.0, 4.0, "对", channel=1)]
    agent_on_right = bench.turn_coverage(turns, spans, {"agent": 1, "customer": 0})
    assert [c["found"] for c in agent_on_right] == [True, False]  # the customer's 对 is on the agent's channel
    agent_on_left = bench.turn_coverage(turns, spans, {"agent": 0, "customer": 1})
    assert [c["found"] for c in agent_on_left] == [False, True]
    mono = bench.turn_coverage(turns, spans)  # no channel map: any span counts
    assert [c["found"] for c in mono] == [True, True]


def test_coverage_text_is_normalised():
    turn = Turn("customer", 0.0, 2.0, "號碼是一三九。")
    cov = bench.turn_coverage([turn], [Span(2.5, 3.0, "号码是139")])[0]
    assert cov["text_frac"] == 1.0


@pytest.mark.parametrize(("ref", "hyp"), [("可以帮您", "可疑帮你呢"), ("abc", ""), ("", "xy"), ("工号一零", "公號10"), ("kitten", "sitting")])
def test_without_rapidfuzz_the_plain_dp_gives_the_same_figures(monkeypatch, ref, hyp):
    with_rf = (bench.levenshtein(ref, hyp), bench.lcs_length(ref, hyp), bench.edit_ops(ref, hyp)[:3])
    monkeypatch.setattr(bench, "_RfLevenshtein", None)
    monkeypatch.setattr(bench, "_RfLCS", None)
    s, d, i, subs = bench.edit_ops(ref, hyp)
    assert bench.levenshtein(ref, hyp) == with_rf[0] == s + d + i
    assert bench.lcs_length(ref, hyp) == with_rf[1]
    assert sum(subs.values()) == s
