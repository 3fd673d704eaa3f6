"""How a voice sounds, per 50 ms frame and per utterance: pitch and loudness, from the decoded audio.

The transcribe stage measures each channel once, while the call is decoded, and the transcript
cache keeps the tracks (:class:`~qa_pipeline.records.VoiceTracks`, a few bytes per frame); every
utterance then gets its median pitch and speech level over the frames its words cover
(:func:`with_voice`), so that re-scoring (`qa score`) needs no audio.

Pitch is YIN (de Cheveigné & Kawahara 2002: the cumulative mean normalised difference function,
absolute threshold, parabolic interpolation) on one 75 ms window per frame, in plain numpy on the
channel's chunks: a 60 s channel costs a few milliseconds. On telephone audio (300–3400 Hz) the
fundamental itself is filtered out, but the period of the harmonics is the same, which is what
YIN finds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from qa_pipeline.audio.stream import chunks_of, frame_blocks
from qa_pipeline.records import CallTranscript, Utterance, VoiceTracks
from qa_pipeline.speakers.roles import LEVEL_FRAME_S, level_profile

VOICE_VERSION = "yin-75ms-2"  # what made the tracks; another value: measured again
F0_MIN_HZ = 70.0
F0_MAX_HZ = 400.0
PITCH_RATE = 8000  # the channel is brought down to this rate first
YIN_THRESHOLD = 0.25 # a dip of the normalised difference under this is a period
DIP_SLACK = 0.1  # the first dip this close to the deepest one is the period
SPEECH_DB = -45.0  # quieter frames are not pitched
MIN_VOICED_FRAMES = 6  # an utterance with fewer pitched frames (0.3 s) has no pitch: too few to tell


def pitch_track(chunks: Iterable[np.ndarray], sample_rate: int, n_frames: int) -> tuple[int, ...]:
    """f0 in whole Hz (0: unvoiced or too quiet) for each LEVEL_FRAME_S frame of one channel."""
    if sample_rate >= 2 * PITCH_RATE and sample_rate % PITCH_RATE == 0:  # pitch needs no more than 8 kHz
        step = sample_rate // PITCH_RATE
        chunks, sample_rate = (_decimated(c, step) for c in chunks), PITCH_RATE
    hop = max(1, int(round(LEVEL_FRAME_S * sample_rate)))
    max_lag = int(math.ceil(sample_rate / F0_MIN_HZ))
    min_lag = int(math.floor(sample_rate / F0_MAX_HZ))
    window = hop  # the difference is summed over one frame …
    frame = window + max_lag  # … each window compared with itself up to max_lag later
    out: list[np.ndarray] = []
    for block in frame_blocks(chunks, frame, hop, rows=1024):
        out.append(_yin(np.asarray(block, dtype=np.float64), window, min_lag, max_lag, sample_rate))
    f0 = np.concatenate(out) if out else np.zeros(0)
    track = np.zeros(n_frames, dtype=np.int64)
    track[: min(n_frames, len(f0))] = np.round(f0[:n_frames])
    return tuple(int(v) for v in track)


def _decimated(chunk: np.ndarray, step: int) -> np.ndarray:
    """Every `step` samples averaged into one (a crude low-pass, plenty below 400 Hz); chunks of a
    stream are whole minutes, so no group straddles two chunks."""
    x = np.asarray(chunk, dtype=np.float32)
    whole = len(x) // step * step
    return x[:whole].reshape(-1, step).mean(axis=1)


def _yin(frames: np.ndarray, window: int, min_lag: int, max_lag: int, sample_rate: int) -> np.ndarray:
    """f0 (0: none) of each row: YIN over lags 1..max_lag of its first `window` samples."""
    n = frames.shape[0]
    size = 1 << int(math.ceil(math.log2(frames.shape[1] + window)))
    head = frames[:, :window]
    spec_full = np.fft.rfft(frames, size)
    spec_head = np.fft.rfft(head, size)
    cross = np.fft.irfft(spec_full * np.conj(spec_head), size)[:, : max_lag + 1]  # Σ x[j] x[j+τ]
    squares = np.concatenate([np.zeros((n, 1)), np.cumsum(frames * frames, axis=1)], axis=1)
    energy0 = squares[:, window][:, None]
    lags = np.arange(max_lag + 1)
    energy_tau = squares[:, lags + window] - squares[:, lags]  # Σ x[j+τ]²
    diff = energy0 + energy_tau - 2 * cross
    diff[:, 0] = 0.0
    running = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, max_lag + 1)
    cmndf = np.ones_like(diff)
    cmndf[:, 1:] = diff[:, 1:] / np.where(running > 1e-12, running, 1e-12)
    band = cmndf[:, min_lag : max_lag + 1]
    best = band.min(axis=1)
    # YIN's absolute threshold, followed to the bottom of its dip: the first dip that is nearly as
    # deep as the deepest (within DIP_SLACK) is the period; a later one is a multiple of it, and on
    # telephone audio, where the fundamental is filtered out, half the period dips too, but less
    bottom = np.ones_like(band, dtype=bool)  # the bottom of a dip: no lower neighbour
    bottom[:, 1:] &= band[:, 1:] <= band[:, :-1]
    bottom[:, :-1] &= band[:, :-1] <= band[:, 1:]
    near = bottom & (band <= np.minimum(best + DIP_SLACK, YIN_THRESHOLD)[:, None])
    k = near.argmax(axis=1)
    rows = np.arange(n)
    rms_db = 10 * np.log10(np.maximum(energy0[:, 0] / window, 1e-12))
    voiced = (best < YIN_THRESHOLD) & (rms_db >= SPEECH_DB)
    # parabolic interpolation around the chosen lag
    inner = (k > 0) & (k < band.shape[1] - 1)
    a = band[rows, np.maximum(k - 1, 0)]
    b = band[rows, k]
    c = band[rows, np.minimum(k + 1, band.shape[1] - 1)]
    denom = a - 2 * b + c
    shift = np.where(inner & (denom > 0), 0.5 * (a - c) / np.where(denom > 0, denom, 1.0), 0.0)
    lag = k + min_lag + shift
    f0 = np.where(voiced, sample_rate / lag, 0.0)
    return f0


def voice_tracks(channels: Sequence, sample_rate: int) -> VoiceTracks:
    """Each channel's pitch and level tracks (the channels as arrays or FileChannels, read by chunks)."""
    pitch, level = [], []
    for samples in channels:
        levels = level_profile(chunks_of(samples), sample_rate)
        level.append(levels)
        pitch.append(pitch_track(chunks_of(samples), sample_rate, len(levels)))
    return VoiceTracks(VOICE_VERSION, tuple(pitch), tuple(level))


def _frames(u: Utterance) -> list[int]:
    spans = [(w.start, w.end) for w in u.words] or [(u.start, u.end)]
    frames: set[int] = set()
    for start, end in spans:
        first = max(0, int(math.floor(start / LEVEL_FRAME_S)))
        frames.update(range(first, max(first + 1, int(math.ceil(end / LEVEL_FRAME_S)))))
    return sorted(frames)


def utterance_voice(u: Utterance, tracks: VoiceTracks) -> tuple[float | None, float | None]:
    """(median pitch in Hz over the pitched frames of its words, speech level in dBFS: the median
    of the louder half of those frames); None where it cannot be told."""
    if not 0 <= u.channel < len(tracks.pitch):
        return None, None
    pitch, level = tracks.pitch[u.channel], tracks.level[u.channel]
    frames = [f for f in _frames(u) if f < len(level)]
    if not frames:
        return None, None
    voiced = [pitch[f] for f in frames if f < len(pitch) and pitch[f] > 0]
    loud = sorted((level[f] for f in frames), reverse=True)[: max(1, len(frames) // 2)]
    hz = round(float(np.median(voiced)), 1) if len(voiced) >= MIN_VOICED_FRAMES else None
    return hz, float(np.median(loud))


def with_voice(transcript: CallTranscript, tracks: VoiceTracks | None) -> CallTranscript:
    """The transcript with each utterance's pitch and level (unchanged without tracks)."""
    if tracks is None:
        return transcript

    def voiced(u: Utterance) -> Utterance:
        hz, db = utterance_voice(u, tracks)
        return replace(u, pitch_hz=hz, level_db=db)

    return replace(transcript, utterances=tuple(voiced(u) for u in transcript.utterances),
                   dropped=tuple(voiced(u) for u in transcript.dropped))
