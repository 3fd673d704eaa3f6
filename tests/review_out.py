"""A real output folder for the review desk tests, built without the speech model.

The 12 labelled dev calls' reference transcripts (tests/data/dev_labels.json) are written as
`qa run` would leave them (transcript tables + run.json), then scored and written by the real
`qa score` code (pipeline.rescore: the default rubric, Parquet tables, report cards). dev_07 and
dev_11 point at their real recordings in tests/data/calls, so their cards play audio; one call's
speech is made low-confidence so that the machine marks items for review.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from qa_pipeline.batch.rescore import rescore
from qa_pipeline.review.export import DESK_REVIEWS
from qa_pipeline.batch.store import RUN_FILE
from qa_pipeline.records import AGENT, AudioEvent, CallMeta, CallTranscript, Utterance, Word
from qa_pipeline.scoring.rubric import rubric_path_default
from qa_pipeline.output.tables import write_transcripts

DATA = Path(__file__).resolve().parent / "data"
CALLS = DATA / "calls"
LOW_CONFIDENCE = "dev_03"

# call -> (agent_id, agent name, team, started_at)
AGENTS = {
    "dev_01": ("A1001", "王晓雨", "宽带服务组", "2025-03-07T09:05:00+08:00"),
    "dev_02": ("A1002", "李婷", "宽带服务组", "2025-03-07T09:40:00+08:00"),
    "dev_03": ("A1003", "陈浩", "电商服务组", "2025-03-07T10:02:00+08:00"),
    "dev_04": ("A1001", "王晓雨", "宽带服务组", "2025-03-07T10:15:00+08:00"),
    "dev_05": ("A1002", "李婷", "宽带服务组", "2025-03-07T11:20:00+08:00"),
    "dev_06": ("A1003", "陈浩", "电商服务组", "2025-03-07T13:00:00+08:00"),
    "dev_07": ("A1003", "陈浩", "电商服务组", "2025-03-07T10:33:26+08:00"),
    "dev_08": ("A1001", "王晓雨", "宽带服务组", "2025-03-07T14:10:00+08:00"),
    "dev_09": ("A1002", "李婷", "宽带服务组", "2025-03-06T15:30:00+08:00"),
    "dev_10": ("A1003", "陈浩", "电商服务组", "2025-03-06T16:00:00+08:00"),
    "dev_11": ("A1001", "王晓雨", "宽带服务组", "2025-03-07T10:41:55+08:00"),
    "dev_12": ("A1002", "李婷", "宽带服务组", "2025-03-06T16:45:00+08:00"),
}


def reference_transcript(call_id: str, label: dict, low_confidence: bool = False) -> CallTranscript:
    utterances = []
    for n, turn in enumerate(label["turns"]):
        text = turn["text"]
        step = (turn["end"] - turn["start"]) / max(len(text), 1)
        prob = 0.3 if low_confidence else 0.9
        words = tuple(Word(ch, turn["start"] + i * step, turn["start"] + (i + 1) * step, prob)
                      for i, ch in enumerate(text))
        utterances.append(Utterance(f"{call_id}-{n:05d}", call_id, turn["speaker"],
                                    0 if turn["speaker"] == AGENT else 1, turn["start"], turn["end"], text, text,
                                    -1.5 if low_confidence else -0.3, 0.05, words))
    events = tuple(AudioEvent("busy_tone", e["start"], e["end"], e.get("channel"))
                   for e in label["events"] if e["type"] == "busy_tone")
    return CallTranscript(call_id, label["duration"], 2, tuple(utterances), "reference", events, 0, "manifest")


def meta(call_id: str) -> CallMeta:
    agent_id, name, team, started = AGENTS[call_id]
    audio = CALLS / f"{call_id}.wav"
    return CallMeta(call_id=call_id, path=audio if audio.is_file() else DATA / "no-audio" / f"{call_id}.wav",
                    agent_id=agent_id, agent_name=name, team=team, started_at=started, direction="inbound")


def write_night(out: Path) -> tuple[list[CallMeta], list[CallTranscript]]:
    """The transcripts and run.json of the 12 calls, as `qa run` leaves them (no scores yet)."""
    labels = json.loads((DATA / "dev_labels.json").read_text(encoding="utf-8"))
    metas = [meta(c) for c in sorted(labels)]
    transcripts = [reference_transcript(c, labels[c], c == LOW_CONFIDENCE) for c in sorted(labels)]
    out.mkdir(parents=True, exist_ok=True)
    write_transcripts(out, transcripts)
    (out / RUN_FILE).write_text(json.dumps({"audio_dir": str(CALLS), "model": "reference", "calls": [
        {**asdict(m), "path": str(m.path)} for m in metas]}, ensure_ascii=False), encoding="utf-8")
    return metas, transcripts


def build_out(out: Path, rubric: Path | None = None) -> Path:
    """OUT with the 12 calls scored by the real `qa score` code; returns OUT."""
    write_night(out)
    rescore(out, rubric or rubric_path_default(), reviews=DESK_REVIEWS)
    return out


# login name -> (role, agent_id, password)
USERS = {
    "lina": ("inspector", None, "lina-password"),
    "zhaoqiang": ("inspector", None, "zhaoqiang-password"),
    "zhoumin": ("supervisor", None, "zhoumin-password"),
    "wangxy": ("agent", "A1001", "wangxy-password"),
    "liting": ("agent", "A1002", "liting-password"),
    "boss": ("manager", None, "boss-password"),
}


def add_users(out: Path) -> None:
    from qa_pipeline.review.auth import hash_password
    from qa_pipeline.review.db import ReviewDB

    db = ReviewDB.open(out)
    for name, (role, agent_id, password) in USERS.items():
        db.put_user(name, role, agent_id, hash_password(password))
    db.close()
