"""Make small audio fixtures in any format PyAV encodes, from numpy arrays or a real call."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def encode(path: Path, samples: np.ndarray, rate: int, *, codec: str, container: str | None = None,
           sample_format: str = "s16", out_rate: int | None = None) -> Path:
    """Write `samples` (channels × n, float in [-1, 1]) to `path` with `codec`."""
    samples = np.atleast_2d(samples)
    n_channels = samples.shape[0]
    layout = {1: "mono", 2: "stereo", 3: "2.1"}[n_channels]
    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=out_rate or rate, layout=layout)
        if codec.startswith("pcm_") or codec in ("flac",):
            data = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
            frame_format = "s16"
        else:
            data = samples.astype(np.float32)
            frame_format = "fltp"
        if frame_format == "s16":
            frame = av.AudioFrame.from_ndarray(data.T.reshape(1, -1).copy(), format="s16", layout=layout)
        else:
            frame = av.AudioFrame.from_ndarray(data.copy(), format="fltp", layout=layout)
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=stream.codec_context.sample_rate)
        for piece in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(piece):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tone(freq: float, seconds: float, rate: int, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def busy_tone(seconds: float, rate: int, on: float = 0.35, off: float = 0.35) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    gate = (t % (on + off)) < on
    return (0.3 * np.sin(2 * np.pi * 450 * t) * gate).astype(np.float32)
