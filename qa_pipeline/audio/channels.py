"""Whether a stereo recording's two channels are one recording twice (an older PBX that saves a
mono call as two equal channels), and the mono channel to hear instead."""

from __future__ import annotations

import math

import numpy as np

from qa_pipeline.audio.stream import chunks_of

# Two channels are the same recording when their samples correlate this well at about the same
# level. The two sides of a real call do not: each channel holds its own speaker, and what leaks
# from the other side (echo, bleed) is 15 dB or more below it and so far from this.
SAME_CORRELATION = 0.98
SAME_LEVEL_DB = 6.0


def likeness(a, b) -> tuple[float, float]:
    """(normalised correlation, level difference in dB) of two equally long channels (arrays or
    anything read by slices), a chunk at a time; (0.0, inf) when either is digital silence."""
    ab = aa = bb = 0.0
    for start in range(0, len(a), 16000 * 60):
        x = np.asarray(a[start : start + 16000 * 60], dtype=np.float64)
        y = np.asarray(b[start : start + 16000 * 60], dtype=np.float64)
        ab += float(np.dot(x, y))
        aa += float(np.dot(x, x))
        bb += float(np.dot(y, y))
    if aa <= 0.0 or bb <= 0.0:
        return 0.0, math.inf
    return ab / math.sqrt(aa * bb), abs(10.0 * math.log10(aa / bb))


def same_recording(a, b) -> float | None:
    """The correlation of channels `a` and `b` when they are the same recording; None otherwise."""
    correlation, level_db = likeness(a, b)
    return correlation if correlation >= SAME_CORRELATION and level_db <= SAME_LEVEL_DB else None


def mean_chunks(a, b):
    """The mean of two channels, a chunk at a time (equal channels give back the same samples)."""
    for x, y in zip(chunks_of(a), chunks_of(b)):
        yield ((np.asarray(x, np.float32) + np.asarray(y, np.float32)) * np.float32(0.5)).astype(np.float32)
