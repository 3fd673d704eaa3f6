"""Kaldi-compatible log mel filterbank features in numpy, as the CAM++ speaker model was trained on.

Same settings as 3D-Speaker's and senko's extractors (torchaudio.compliance.kaldi.fbank /
kaldifeat defaults): 16 kHz, 25 ms povey window, 10 ms shift, snip_edges, dither 0, DC removed,
pre-emphasis 0.97, FFT padded to 512, power spectrum, 80 triangular mel bins from 20 Hz to
Nyquist, natural log floored at float32 epsilon. Waveforms are floats in [-1, 1].
Mean normalisation is per embedding window and left to the caller (`normalize_mean`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

EPSILON = float(np.finfo(np.float32).eps)
CHUNK_FRAMES = 6000  # one minute at a time, to bound memory on long calls


@dataclass(frozen=True)
class FbankOptions:
    sample_rate: int = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    num_mel_bins: int = 80
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from Nyquist, as in Kaldi
    preemphasis: float = 0.97

    @property
    def window_size(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def window_shift(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    @property
    def padded_size(self) -> int:
        return 1 << (self.window_size - 1).bit_length()


def num_frames(n_samples: int, options: FbankOptions = FbankOptions()) -> int:
    if n_samples < options.window_size:
        return 0
    return 1 + (n_samples - options.window_size) // options.window_shift


def fbank(samples: np.ndarray, options: FbankOptions = FbankOptions()) -> np.ndarray:
    """[frames, num_mel_bins] float32 log mel energies of a mono waveform at options.sample_rate."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"fbank expects a mono waveform, got shape {x.shape}")
    n = num_frames(len(x), options)
    if n == 0:
        return np.zeros((0, options.num_mel_bins), dtype=np.float32)
    size, shift = options.window_size, options.window_shift
    strided = np.lib.stride_tricks.as_strided(x, shape=(n, size), strides=(x.strides[0] * shift, x.strides[0]), writeable=False)
    return np.concatenate([_log_mel(strided[at:at + CHUNK_FRAMES], options) for at in range(0, n, CHUNK_FRAMES)])


def _log_mel(frames: np.ndarray, options: FbankOptions) -> np.ndarray:
    frames = frames.astype(np.float64)
    frames = frames - frames.mean(axis=1, keepdims=True)
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = (frames - options.preemphasis * previous) * _povey_window(options.window_size)
    spectrum = np.fft.rfft(frames, n=options.padded_size, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = power[:, :-1] @ _mel_banks(options).T  # Kaldi's banks leave out the Nyquist bin
    return np.log(np.maximum(mel, EPSILON)).astype(np.float32)


def normalize_mean(features: np.ndarray) -> np.ndarray:
    """Subtract the per-bin mean over the frames (what CAM++ expects for each window)."""
    if len(features) == 0:
        return features
    return features - features.mean(axis=0, keepdims=True)


@lru_cache(maxsize=4)
def _povey_window(size: int) -> np.ndarray:
    n = np.arange(size, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / (size - 1))) ** 0.85


def _mel(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


@lru_cache(maxsize=4)
def _mel_banks(options: FbankOptions) -> np.ndarray:
    """[num_mel_bins, padded_size // 2] triangular filters on the mel scale (Kaldi's get_mel_banks)."""
    nyquist = 0.5 * options.sample_rate
    high = options.high_freq if options.high_freq > 0 else nyquist + options.high_freq
    if not 0 <= options.low_freq < high <= nyquist:
        raise ValueError(f"bad mel range {options.low_freq}-{high} Hz for sample rate {options.sample_rate}")
    n_fft_bins = options.padded_size // 2
    mel_low, mel_high = _mel(options.low_freq), _mel(high)
    delta = (mel_high - mel_low) / (options.num_mel_bins + 1)
    index = np.arange(options.num_mel_bins, dtype=np.float64)[:, None]
    left, center, right = mel_low + index * delta, mel_low + (index + 1) * delta, mel_low + (index + 2) * delta
    mel = _mel(options.sample_rate / options.padded_size * np.arange(n_fft_bins))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    return np.maximum(0.0, np.minimum(up, down))
