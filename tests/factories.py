"""Factories for hand-built pipeline records (no audio, no model) used by table and report tests, and
snapshot(): what a reader of an output folder sees, for tests that compare two runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from qa_pipeline.records import (
    RawSegment,
    RawWord,
    AGENT,
    CUSTOMER,
    FAIL,
    NA,
    PASS,
    AudioEvent,
    CallMeta,
    CallScore,
    CallTranscript,
    ItemResult,
    Utterance,
    Word,
)
from qa_pipeline.output.tables import read_scores, read_transcripts

DEFAULT_LINES = (
    (AGENT, 0.4, 3.1, "您好，这里是宽带客服，工号一零零一，请问有什么可以帮您？"),
    (CUSTOMER, 3.6, 7.9, "我家宽带断了，我的手机号是13905728846。"),
    (AGENT, 8.3, 11.0, "好的，我跟您确认一下，号码是139,0572,8846，对吗？"),
    (CUSTOMER, 11.4, 13.0, "对，地址是杭州市西湖区文三路100号。"),
    (AGENT, 13.5, 15.2, "请您稍等，我帮您查询一下。"),
    (AGENT, 24.0, 27.5, "感谢您的耐心等待，师傅九点到十二点上门。"),
    (CUSTOMER, 27.9, 28.8, "好的，谢谢。"),
    (AGENT, 29.2, 31.0, "请问还有其他可以帮您的吗？再见。"),
)


def make_utterance(
    call_id: str = "call_001",
    n: int = 0,
    speaker: str = AGENT,
    start: float = 0.0,
    end: float = 1.0,
    text: str = "您好",
    channel: int | None = None,
) -> Utterance:
    chars = list(text) or [""]
    step = (end - start) / len(chars)
    words = tuple(
        Word(ch, round(start + k * step, 3), round(start + (k + 1) * step, 3), 0.9) for k, ch in enumerate(chars)
    )
    return Utterance(
        utterance_id=f"{call_id}-{n:05d}",
        call_id=call_id,
        speaker=speaker,
        channel=channel if channel is not None else (0 if speaker == AGENT else 1),
        start=start,
        end=end,
        text=text,
        raw_text=text.replace("您", "你"),
        avg_logprob=-0.25,
        no_speech_prob=0.01,
        words=words,
    )


def make_transcript(
    call_id: str = "call_001",
    lines: tuple[tuple[str, float, float, str], ...] = DEFAULT_LINES,
    dropped: tuple[tuple[str, float, float, str], ...] = ((CUSTOMER, 40.0, 42.0, "请不吝点赞 订阅 转发"),),
    drop_reasons: tuple[str, ...] = ("known_hallucination",),
    events: tuple[AudioEvent, ...] = (AudioEvent("busy_tone", 33.0, 36.0, 1),),
    duration_s: float = 36.5,
) -> CallTranscript:
    utterances = tuple(make_utterance(call_id, k, sp, a, b, t) for k, (sp, a, b, t) in enumerate(lines))
    dropped_utts = tuple(
        make_utterance(call_id, len(lines) + k, sp, a, b, t) for k, (sp, a, b, t) in enumerate(dropped)
    )
    return CallTranscript(
        call_id=call_id,
        duration_s=duration_s,
        n_channels=2,
        utterances=utterances,
        model="base",
        events=events,
        agent_channel=0,
        agent_channel_method="manifest",
        dropped=dropped_utts,
        drop_reasons=drop_reasons,
    )


def make_items(call_id: str = "call_001") -> tuple[ItemResult, ...]:
    return (
        ItemResult(call_id, "greeting", "开头问候", PASS, 10, 10, "开头说了您好", "您好，这里是宽带客服",
                   0.4, 3.1, matched_by="text"),
        ItemResult(call_id, "confirm_details", "复述确认", PASS, 15, 15, "复述了客户号码",
                   "号码是139,0572,8846，对吗", 8.3, 11.0, matched_by="text"),
        ItemResult(call_id, "hold_etiquette", "等待礼仪", FAIL, 0, 10, "等待 8.5 秒，超过 7 秒", "请您稍等",
                   13.5, 15.2, matched_by="pinyin", needs_review=True),
        ItemResult(call_id, "apology", "致歉", NA, 0, 0, "客户没有投诉，也没有久等"),
        ItemResult(call_id, "forbidden_phrases", "禁用语", PASS, 20, 20, "未出现禁用语", critical=True),
        ItemResult(call_id, "customer_hangs_up_first", "客户先挂机", PASS, 5, 5, "话单记录客户先挂机",
                   matched_by="manifest"),
    )


def make_meta(
    call_id: str = "call_001",
    path: Path | str = "/data/recordings/call_001.wav",
    agent_id: str | None = "A1001",
    agent_name: str | None = "王晓雨",
    team: str | None = "宽带服务组",
    started_at: str | None = "2025-03-03T09:14:05+08:00",
) -> CallMeta:
    return CallMeta(
        call_id=call_id,
        path=Path(path),
        agent_id=agent_id,
        agent_name=agent_name,
        team=team,
        started_at=started_at,
        direction="inbound",
        hangup_by="customer",
        agent_channel=0,
    )


def make_score(
    call_id: str = "call_001",
    score: float = 85.0,
    passed: bool = True,
    agent_id: str | None = "A1001",
    agent_name: str | None = "王晓雨",
    team: str | None = "宽带服务组",
    started_at: str | None = "2025-03-03T09:14:05+08:00",
    items: tuple[ItemResult, ...] | None = None,
    critical_failed: bool = False,
) -> CallScore:
    return CallScore(
        call_id=call_id,
        status="ok",
        agent_id=agent_id,
        agent_name=agent_name,
        team=team,
        started_at=started_at,
        duration_s=36.5,
        rubric_id="default.zh",
        rubric_version="1",
        score=score,
        passed=passed,
        critical_failed=critical_failed,
        model="base",
        processed_at="2025-03-04T02:00:00+08:00",
        items=make_items(call_id) if items is None else items,
    )


def make_failed_score(
    call_id: str = "call_bad",
    error: str = "decode failed: file is empty (0 bytes)",
    agent_id: str | None = "A1002",
    started_at: str | None = None,
) -> CallScore:
    return CallScore(
        call_id=call_id,
        status="failed",
        agent_id=agent_id,
        agent_name="李婷",
        team="宽带服务组",
        started_at=started_at,
        error=error,
        model="base",
        processed_at="2025-03-04T02:00:00+08:00",
    )


# --- what a reader of an output folder sees (tests that compare two runs) ---------------------


def snapshot(out: Path, only: set[str] | None = None, keep_time: bool = False) -> dict:
    """Everything a reader of OUT sees, with processed_at set aside unless `keep_time`."""
    scores = read_scores(out)
    ids = [s.call_id for s in scores]
    assert len(ids) == len(set(ids)), f"duplicate call rows: {ids}"
    transcripts = read_transcripts(out)
    for t in transcripts.values():
        utterance_ids = [u.utterance_id for u in t.utterances + t.dropped]
        assert len(utterance_ids) == len(set(utterance_ids)), t.call_id
    keep = (lambda call_id: only is None or call_id in only)
    failed_csv = (out / "failed.csv").read_text(encoding="utf-8").splitlines()
    return {
        "scores": {s.call_id: (s if keep_time else dataclasses.replace(s, processed_at=None))
                   for s in scores if keep(s.call_id)},
        "transcripts": {k: v for k, v in transcripts.items() if keep(k)},
        "reports": sorted(str(p.relative_to(out)) for p in (out / "reports" / "calls").iterdir()
                          if keep(p.stem)),
        "failed": [line for line in failed_csv[1:] if keep(line.split(",")[0])],
    }


# --------------------------------------------------------------------------- a fake Whisper

LINES = [(1, 0.5, "您好，工号1234，请问有什么可以帮您？"), (0, 3.0, "我的宽带断了。"),
         (1, 5.0, "好的，我给您确认一下。"), (1, 8.0, "还有什么可以帮您？感谢您的来电，再见。")]


def said(channel: int, start: float, text: str) -> RawSegment:
    step = 0.2
    words = tuple(RawWord(ch, start + i * step, start + (i + 1) * step, 0.9) for i, ch in enumerate(text))
    return RawSegment(channel, start, words[-1].end, text, -0.2, 0.05, 1.1, words)


class FakeWhisper:
    """A Transcriber that hears the same four lines in every stereo call."""

    def describe(self) -> str:
        return "fake (cpu, int8)"

    def transcribe(self, channels):
        return [said(*line) for line in LINES]

    def transcribe_many(self, calls):
        return [self.transcribe(c) for c in calls]
