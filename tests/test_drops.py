"""Drop reasons reach the page in the reader's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_pipeline.asr.guards import check_segment
from qa_pipeline.output.drops import drop_reason
from qa_pipeline.output.report import call_view
from qa_pipeline.records import CallMeta, RawSegment

from tests.factories import make_score, make_transcript


@pytest.mark.parametrize(("reason", "chinese"), [
    ("empty text", "没有文字"),
    ("known subtitle boilerplate (不吝(点赞|订阅|转发|打赏))", "字幕类套话"),
    ("likely silence (no_speech_prob 0.91, avg_logprob -1.20)", "疑似静音中的幻觉"),
    ("repetition loop", "重复循环"),
    ("repetitive text (compression ratio 3.1)", "文字高度重复"),
    ("repeated across segments (23x '我知道了' from 12.0 s)", "跨片段重复 23 次"),
    ("channel bleed (14 dB below the other channel)", "比对方声道低 14 dB"),
    ("noise-like audio (6 dB above the channel's noise floor, word probability 0.21)", "仅高出本声道噪声底 6 dB"),
])
def test_every_guard_reason_reads_in_chinese(reason: str, chinese: str):
    assert chinese in drop_reason(reason)
    assert drop_reason(reason, "en") != drop_reason(reason)


def test_a_reason_no_pattern_knows_is_shown_as_written():
    assert drop_reason("something new") == "something new"


def test_what_the_guards_write_is_known_to_the_catalogue():
    boilerplate = RawSegment(channel=0, start=1.0, end=3.0, text="请不吝点赞 订阅 转发 打赏支持明镜与点点栏目",
                             avg_logprob=-0.3, no_speech_prob=0.1, compression_ratio=1.2, words=())
    reason = check_segment(boilerplate, boilerplate.text)
    assert reason is not None and drop_reason(reason) != reason


def test_the_card_shows_the_dropped_piece_with_a_chinese_reason():
    transcript = make_transcript("c1", drop_reasons=("repetition loop",))
    view = call_view(make_score("c1"), transcript, CallMeta(call_id="c1", path=Path("c1.wav")), None)
    assert [d["reason"] for d in view["dropped"]] == ["识别器陷入重复循环"]
    assert view["dropped"][0]["speaker"] == "客户"
