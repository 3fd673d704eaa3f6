"""Find call-progress tones in the audio: the Chinese busy tone heard after the other side hangs up."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa_pipeline.records import AudioEvent


@dataclass(frozen=True)
class BusyToneSpec:
    """China's busy tone: 450 Hz, 0.35 s on, 0.35 s off (YD/T 1091)."""

    freq_hz: float = 450.0
    on_s: float = 0.35
    off_s: float = 0.35
    tolerance_s: float = 0.12
    min_bursts: int = 2
    min_purity: float = 0.6  # share of the frame's energy within the tone's band
    min_level: float = 10 ** (-40 / 20)  # RMS; -40 dBFS


FRAME_S = 0.05
HOP_S = 0.025


def find_busy_tones(samples: np.ndarray, sample_rate: int, *, channel: int | None = None,
                    spec: BusyToneSpec = BusyToneSpec()) -> list[AudioEvent]:
    """Return one busy_tone event per run of on/off bursts with the tone's cadence."""
    frame, hop = int(FRAME_S * sample_rate), int(HOP_S * sample_rate)
    if len(samples) < frame:
        return []
    n_frames = 1 + (len(samples) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = samples[idx] * np.hanning(frame)[None, :]
    spectrum = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    band = (freqs > spec.freq_hz - 40) & (freqs < spec.freq_hz + 40)
    total = spectrum.sum(axis=1) + 1e-12
    purity = spectrum[:, band].sum(axis=1) / total
    rms = np.sqrt((samples[idx] ** 2).mean(axis=1))
    tone = (purity >= spec.min_purity) & (rms >= spec.min_level)

    bursts = _runs(tone, HOP_S, FRAME_S)
    bursts = [(s, e) for s, e in bursts if abs((e - s) - spec.on_s) <= spec.tolerance_s + FRAME_S]
    events: list[AudioEvent] = []
    group: list[tuple[float, float]] = []
    for burst in bursts:
        if group and abs((burst[0] - group[-1][1]) - spec.off_s) > spec.tolerance_s + FRAME_S:
            _close(group, events, spec, channel)
            group = []
        group.append(burst)
    _close(group, events, spec, channel)
    return events


def _close(group: list[tuple[float, float]], events: list[AudioEvent], spec: BusyToneSpec, channel: int | None) -> None:
    if len(group) >= spec.min_bursts:
        events.append(AudioEvent(kind="busy_tone", start=round(float(group[0][0]), 2), end=round(float(group[-1][1]), 2), channel=channel))


def _runs(mask: np.ndarray, hop_s: float, frame_s: float) -> list[tuple[float, float]]:
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(a * hop_s, (b - 1) * hop_s + frame_s) for a, b in zip(edges[::2], edges[1::2])]
