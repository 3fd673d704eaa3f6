"""Line echo on stereo calls: one side's voice coming back, faint and late, on the other side's channel.

Analogue trunks and some softphones leak the agent's voice into the customer's channel, about 20-30 dB
down and 20-80 ms late. Whisper transcribes the copy, often as other words than the original (a faint,
band-limited voice), so the text-based bleed check (roles.bleed_below_db) misses much of it and agent
sentences turn up as customer turns.

An echo is a fixed path: the echoed channel's loudness follows the source channel's, a constant number
of dB down and a constant delay later. :func:`echo_path` finds such a path from the channels' loudness
envelopes (roles.channel_levels: whole dBFS per 50 ms frame) — over the frames where the source speaks
and the target is quieter than it, the target's level tracks the source's (correlation) at a steady
offset (spread); on a clean line the target sits at its noise floor whatever the source does. A piece
of the target channel is then echo when its audible frames are no louder than the path predicts from
the source (:func:`echo_share`): the customer's own voice, even over the agent's, stands well above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

FRAME_S = 0.05  # roles.LEVEL_FRAME_S
MAX_LAG_FRAMES = 4  # delays up to 200 ms
SOURCE_ACTIVE_DB = -38.0  # source frames this loud or louder are speech whose echo can be heard
QUIETER_DB = 6.0  # target frames at least this much below the source: echo or silence, not its own speech
MIN_FRAMES = 40  # 2 s of such frames before a path is believed
MIN_CORRELATION = 0.6  # the target's level follows the source's (0.9 on an echoed line, under 0.2 on the dev calls) …
MAX_SPREAD_DB = 6.0  # … at a steady offset (interquartile range of target - source; 6-13 dB with no echo)
ABOVE_FLOOR_DB = 2.0  # the echo must rise this far above the target's noise floor to be told at all
FLOOR_PERCENTILE = 10
MARGIN_DB = 6.0  # a target frame no louder than the predicted echo + this is explained by the echo
AUDIBLE_DB = 6.0  # piece frames this far above the target's floor are compared
MIN_ECHO_SHARE = 0.7  # a piece is echo when this share of its audible frames is


@dataclass(frozen=True)
class EchoPath:
    """`source`'s voice comes back on `target`, `gain_db` (negative) louder and `lag` frames later."""

    source: int
    target: int
    lag: int  # frames of FRAME_S
    gain_db: float
    correlation: float
    spread_db: float

    @property
    def delay_ms(self) -> int:
        return int(round(self.lag * FRAME_S * 1000))

    def describe(self) -> str:
        return f"line echo (the other channel {-self.gain_db:.0f} dB down, {self.delay_ms} ms late)"


def echo_path(levels: Sequence[Sequence[int]], source: int, target: int) -> EchoPath | None:
    """The echo path from channel `source` to channel `target`, or None when the target does not
    carry the source's voice."""
    src = np.asarray(levels[source], dtype=np.float64)
    tgt = np.asarray(levels[target], dtype=np.float64)
    n = min(len(src), len(tgt))
    if n <= MAX_LAG_FRAMES + MIN_FRAMES:
        return None
    floor = float(np.percentile(tgt[:n], FLOOR_PERCENTILE))
    best: EchoPath | None = None
    for lag in range(MAX_LAG_FRAMES + 1):
        s, t = src[: n - lag], tgt[lag:n]
        use = (s >= SOURCE_ACTIVE_DB) & (t <= s - QUIETER_DB)
        if int(use.sum()) < MIN_FRAMES:
            continue
        s_used, t_used = s[use], t[use]
        if np.std(s_used) < 1e-6 or np.std(t_used) < 1e-6:
            continue
        correlation = float(np.corrcoef(s_used, t_used)[0, 1])
        offset = t_used - s_used
        q1, gain, q3 = (float(v) for v in np.percentile(offset, [25, 50, 75]))
        path = EchoPath(source, target, lag, gain, correlation, q3 - q1)
        if best is None or correlation > best.correlation:
            best = path
    if best is None or best.correlation < MIN_CORRELATION or best.spread_db > MAX_SPREAD_DB:
        return None
    heard = src[src >= SOURCE_ACTIVE_DB] + best.gain_db
    if not len(heard) or float(np.median(heard)) < floor + ABOVE_FLOOR_DB:
        return None  # an echo at the noise floor is nothing Whisper hears
    return best


def echo_paths(levels: Sequence[Sequence[int]]) -> dict[int, EchoPath]:
    """The echo path into each channel of a stereo call that has one, by target channel."""
    if len(levels) != 2:
        return {}
    paths = {}
    for source in (0, 1):
        path = echo_path(levels, source, 1 - source)
        if path is not None:
            paths[path.target] = path
    return paths


def echo_share(frames: Sequence[int], levels: Sequence[Sequence[int]], path: EchoPath) -> float | None:
    """The share of the target channel's audible `frames` no louder than the echo of the source
    predicts; None when no frame is audible."""
    src = np.asarray(levels[path.source], dtype=np.float64)
    tgt = np.asarray(levels[path.target], dtype=np.float64)
    floor = float(np.percentile(tgt, FLOOR_PERCENTILE))
    audible = explained = 0
    for f in frames:
        if not 0 <= f < len(tgt) or tgt[f] < floor + AUDIBLE_DB:
            continue
        audible += 1
        source_frame = f - path.lag
        predicted = src[source_frame] + path.gain_db if 0 <= source_frame < len(src) else -np.inf
        if tgt[f] <= predicted + MARGIN_DB:
            explained += 1
    return explained / audible if audible else None


def is_echo(frames: Sequence[int], levels: Sequence[Sequence[int]], path: EchoPath) -> bool:
    share = echo_share(frames, levels, path)
    return share is not None and share >= MIN_ECHO_SHARE
