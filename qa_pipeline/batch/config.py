"""What a batch command is asked to do, built once from the command line and validated here.

RunConfig = inputs (audio folder, manifest or name pattern) + how to transcribe + where the outputs
go + the rubric (none for `qa transcribe`). A value that cannot work is refused with InputError when
the config is built, before any file is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from qa_pipeline.asr.transcribe import TranscribeOptions
from qa_pipeline.audio.decode import DEFAULT_MAX_DURATION_S
from qa_pipeline.choices import Decoder, Device
from qa_pipeline.errors import InputError


MAX_BEAM_SIZE = 20
MAX_BATCH_SIZE = 512
DEFAULT_CPU_THREADS = 2
MAX_CPU_THREADS = 256


def choice(enum: type[Enum], value: Any, what: str) -> Any:
    """`value` as a member of `enum`; InputError listing the valid values otherwise."""
    try:
        return enum(value)
    except ValueError:
        raise InputError(f"{what} must be one of {', '.join(str(m.value) for m in enum)}, not {value!r}") from None


@dataclass(frozen=True)
class Inputs:
    audio_dir: Path
    manifest: Path | None = None  # CSV with call_id, path, agent_id, …
    name_pattern: str | None = None  # metadata from file names, e.g. '{date}_{agent_id}_{call_id}.wav'

    def __post_init__(self) -> None:
        object.__setattr__(self, "audio_dir", Path(self.audio_dir))
        if self.manifest is not None:
            object.__setattr__(self, "manifest", Path(self.manifest))


@dataclass(frozen=True)
class TranscribeConfig:
    """Everything the transcribe stage needs: the model, where it runs, the cache, the options."""

    model: str = "base"
    device: Device = Device.auto
    compute_type: str | None = None
    cache_dir: Path | None = None  # transcript cache; default: <cache root>/transcripts
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    options: TranscribeOptions = field(default_factory=TranscribeOptions)
    # Threads of each model replica (Whisper's CTranslate2, the speaker embedder's onnxruntime),
    # fixed rather than the machine's core count: the embeddings always, and Whisper on some CPUs
    # (Intel MKL), come out differently with another count. Part of the cache key and fingerprint.
    cpu_threads: int = DEFAULT_CPU_THREADS

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", choice(Device, self.device, "device"))
        if not self.model:
            raise InputError("a model must be given")
        if not (self.max_duration_s > 0 and math.isfinite(self.max_duration_s)):  # nan and inf too
            raise InputError(f"the longest call accepted (--max-duration) must be a positive number of minutes, "
                             f"not {self.max_duration_s / 60:g}")
        opts = self.options
        decoder = choice(Decoder, opts.decoder, "decoder")
        if decoder is not opts.decoder:
            object.__setattr__(self, "options", replace(opts, decoder=decoder))
        if not 1 <= self.cpu_threads <= MAX_CPU_THREADS:
            raise InputError(f"the threads per model (--cpu-threads) must be 1 to {MAX_CPU_THREADS}, not {self.cpu_threads}")
        if not 1 <= opts.beam_size <= MAX_BEAM_SIZE:
            raise InputError(f"the beam size (--beam-size) must be 1 to {MAX_BEAM_SIZE}, not {opts.beam_size}")
        if not 0 <= opts.batch_size <= MAX_BATCH_SIZE:
            raise InputError(f"the batch size (--batch-size) must be 0 (automatic) to {MAX_BATCH_SIZE}, not {opts.batch_size}")


@dataclass(frozen=True)
class RunConfig:
    """One batch command: `qa run` (with a rubric) or `qa transcribe` (rubric None)."""

    inputs: Inputs
    out: Path
    transcribe: TranscribeConfig = field(default_factory=TranscribeConfig)
    rubric: Path | None = None
    retry_failed: bool = False  # try again the calls that failed for good (retry=no, crashed twice)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.rubric is not None:
            object.__setattr__(self, "rubric", Path(self.rubric))
