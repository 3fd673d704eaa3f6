"""On-disk cache of transcription results, keyed by (audio content, model, options).

What is cached is the expensive part only: Whisper's raw segments and the tones found in the
audio. Speaker labelling, guards and scoring are cheap and re-run every time, so changing them
never needs a re-transcription.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from qa_pipeline.records import AudioEvent
from qa_pipeline.transcribe import RawSegment, RawWord

CACHE_FORMAT = 1


@dataclass(frozen=True)
class CachedAudio:
    duration_s: float
    n_channels: int
    segments: tuple[RawSegment, ...]
    events: tuple[AudioEvent, ...]
    speaker_turns: tuple[tuple[float, float, int], ...] | None = None  # mono: (start, end, cluster); None: not diarized
    levels: tuple[tuple[int, ...], ...] | None = None  # stereo: dBFS per 50 ms frame per channel; None: not measured


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(audio_digest: str, model: str, options: dict) -> str:
    spec = json.dumps({"format": CACHE_FORMAT, "audio": audio_digest, "model": model, "options": options}, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:32]


class TranscriptCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def contains(self, key: str) -> bool:
        return self._path(key).is_file()

    def get(self, key: str) -> CachedAudio | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable entry: transcribe again and overwrite it
        return CachedAudio(
            duration_s=data["duration_s"],
            n_channels=data["n_channels"],
            segments=tuple(
                RawSegment(**{**s, "words": tuple(RawWord(**w) for w in s["words"])}) for s in data["segments"]
            ),
            events=tuple(AudioEvent(**e) for e in data["events"]),
            speaker_turns=(
                tuple((float(a), float(b), int(c)) for a, b, c in data["speaker_turns"])
                if data.get("speaker_turns") is not None else None
            ),
            levels=tuple(tuple(int(v) for v in ch) for ch in data["levels"]) if data.get("levels") is not None else None,
        )

    def put(self, key: str, entry: CachedAudio) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(asdict(entry), ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
