"""Mono diarization: Kaldi fbank, two-way clustering, word-level splitting, the agent's cluster,
and (when the CAM++ model is installed) a real mono dev call against its reference turns."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa_pipeline.speakers.diarize import (
    INSTALL_COMMAND, DiarizeOptions, SpeakerEmbedder, SpeakerModelMissing, SpeakerSegment, SpeakerTurn,
    Embedded, agent_cluster, cluster_two, default_model_path, diarize, kmeans, refine_indistinct, resegment,
    resegment_id, speaker_model_id, speaker_roles, split_by_speaker, switch_costs, viterbi_two, window_levels,
    window_llr, windows_for,
)
from qa_pipeline.speakers.fbank import fbank, normalize_mean, num_frames
from qa_pipeline.records import AGENT, CUSTOMER, RawSegment, RawWord

SR = 16000


def _chirp_and_tone() -> np.ndarray:
    t = np.arange(SR) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * (100 * t + 3450 * t * t))).astype(np.float32)


# torchaudio.compliance.kaldi.fbank(x, num_mel_bins=80, dither=0.0) of _chirp_and_tone():
# {frame: values at mel bins 0, 10, 25, 40, 60, 79}
KALDI_REFERENCE = {
    0: (-7.6832, -5.1766, -12.8917, -15.9424, -15.9424, -15.9424),
    40: (-13.2259, -5.5945, -12.7948, -14.8452, -14.2779, -15.9424),
    97: (-11.6404, -5.5873, -13.0392, -15.9424, -15.9424, -11.0868),
}


def test_fbank_matches_kaldi_reference_values():
    features = fbank(_chirp_and_tone())
    assert features.shape == (98, 80)
    assert features.dtype == np.float32
    for frame, values in KALDI_REFERENCE.items():
        np.testing.assert_allclose(features[frame, [0, 10, 25, 40, 60, 79]], values, atol=0.01)


def test_fbank_shape_and_tone_position():
    assert num_frames(399) == 0 and fbank(np.zeros(399, np.float32)).shape == (0, 80)
    assert fbank(np.zeros(400, np.float32)).shape == (1, 80)
    tone = np.sin(2 * np.pi * 1000 * np.arange(SR) / SR).astype(np.float32)
    low = np.sin(2 * np.pi * 200 * np.arange(SR) / SR).astype(np.float32)
    assert fbank(tone).mean(axis=0).argmax() > fbank(low).mean(axis=0).argmax()
    assert np.isfinite(fbank(np.zeros(SR, np.float32))).all()  # silence is floored, not -inf
    with pytest.raises(ValueError, match="mono"):
        fbank(np.zeros((2, SR), np.float32))


def test_normalize_mean_zeroes_each_bin():
    features = normalize_mean(fbank(_chirp_and_tone()))
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-4)


def _two_speakers(n_a: int, n_b: int, seed: int = 0, noise: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, 192))
    truth = np.array([0] * n_a + [1] * n_b)
    rng.shuffle(truth[1:])  # the first row stays speaker 0
    return centres[truth] + noise * rng.normal(size=(len(truth), 192)) * np.linalg.norm(centres[0]) / np.sqrt(192), truth


@pytest.mark.parametrize("pruning", ["fixed", "auto"])
@pytest.mark.parametrize("n_a,n_b", [(30, 30), (60, 8), (8, 60), (5, 4)])
def test_cluster_two_separates_speakers_even_when_unbalanced(n_a, n_b, pruning):
    embeddings, truth = _two_speakers(n_a, n_b)
    labels = cluster_two(embeddings, DiarizeOptions(pruning=pruning))
    assert labels[0] == 0
    assert np.array_equal(labels, truth)


def test_cluster_two_on_a_long_call_clusters_a_subset_and_assigns_the_rest():
    embeddings, truth = _two_speakers(300, 120, seed=5)
    assert np.array_equal(cluster_two(embeddings, DiarizeOptions(max_cluster_windows=60)), truth)


@pytest.mark.parametrize("pruning", ["fixed", "auto"])
def test_cluster_two_splits_by_speaker_where_a_few_odd_windows_stand_out(pruning):
    # Two speakers plus a handful of windows unlike either (a cough, a burst of line noise): the
    # split is still by speaker, not the odd windows against the rest.
    embeddings, truth = _two_speakers(40, 40, seed=7, noise=0.6)
    odd = np.random.default_rng(1).normal(size=(4, 192)) * np.linalg.norm(embeddings[0])
    labels = cluster_two(np.vstack([embeddings, odd]), DiarizeOptions(pruning=pruning))[:80]
    assert np.array_equal(labels, truth)


def test_unknown_pruning_is_refused():
    embeddings, _ = _two_speakers(10, 10)
    with pytest.raises(ValueError, match="unknown pruning 'nme'"):
        cluster_two(embeddings, DiarizeOptions(pruning="nme"))


def test_cluster_two_is_deterministic_and_handles_tiny_input():
    embeddings, _ = _two_speakers(20, 20, seed=3)
    assert np.array_equal(cluster_two(embeddings), cluster_two(embeddings.copy()))
    assert cluster_two(embeddings[:2]).tolist() == [0, 0]
    assert kmeans(np.array([[0.0], [0.1], [5.0], [5.1]]), 2).tolist() in ([0, 0, 1, 1], [1, 1, 0, 0])


def test_windows_cover_regions_and_widen_short_ones():
    windows = windows_for([(0.0, 4.0), (10.0, 10.2)], duration_s=20.0)
    first = [w for w in windows if w[2] == 0]
    assert first[0][0] == 0.0 and first[-1][1] == 4.0
    assert all(round(e - s, 6) == 1.5 for s, e, _r in first)
    short = [w for w in windows if w[2] == 1]
    assert len(short) == 1 and short[0][1] - short[0][0] == pytest.approx(0.5)
    assert short[0][0] < 10.0 and short[0][1] > 10.2


class StepEmbedder:
    """A fake speaker model: one voice before `change_s`, another after it."""

    def __init__(self, change_s: float) -> None:
        self.change_s = change_s

    def embed_windows(self, samples, windows):
        rng = np.random.default_rng(1)
        a, b = rng.normal(size=(2, 16))
        return np.array([a if (s + e) / 2 < self.change_s else b for s, e in windows]) + 0.01 * rng.normal(size=(len(windows), 16))


def test_diarize_finds_the_change_inside_a_region():
    samples = np.zeros(20 * SR, np.float32)
    turns = diarize(samples, SR, [(1.0, 12.0), (14.0, 19.0)], embedder=StepEmbedder(6.0))
    assert [t.cluster for t in turns] == [0, 1, 1]
    assert turns[0].start == 1.0 and turns[-1].end == 19.0
    assert abs(turns[0].end - 6.0) <= DiarizeOptions().hop_s
    assert all(a.end <= b.start for a, b in zip(turns, turns[1:]))
    assert diarize(samples, SR, [], embedder=StepEmbedder(6.0)) == []
    with pytest.raises(ValueError, match="16000"):
        diarize(samples, 8000, [(0.0, 1.0)], embedder=StepEmbedder(6.0))


def _segment(words: list[tuple[str, float, float]], channel: int = 0) -> RawSegment:
    raw = tuple(RawWord(text, start, end, 0.9) for text, start, end in words)
    return RawSegment(channel, raw[0].start if raw else 0.0, raw[-1].end if raw else 1.0,
                      "".join(w.text for w in raw), -0.3, 0.01, 1.2, raw)


def test_split_by_speaker_cuts_where_the_speaker_changes():
    # The agent asks, the customer answers 对 inside the same Whisper segment.
    segment = _segment([("好的", 0.0, 0.6), ("是吗", 0.6, 1.2), ("对", 1.9, 2.3), ("我", 2.4, 2.6), ("是", 2.6, 3.0)])
    turns = [SpeakerTurn(0.0, 1.5, 0), SpeakerTurn(1.5, 3.2, 1)]
    pieces = split_by_speaker([segment], turns)
    assert [(p.segment.text, p.cluster) for p in pieces] == [("好的是吗", 0), ("对我是", 1)]
    assert pieces[0].segment.end == 1.2 and pieces[1].segment.start == 1.9
    assert segment.text == "好的是吗对我是"  # input untouched


def test_a_cut_one_word_off_a_clause_end_moves_to_it():
    # 祝您生活愉快，再见 | 再见: the turns change a word early, inside the agent's clause
    words = [("祝", 0.0, 0.2), ("您", 0.2, 0.4), ("生活", 0.4, 0.8), ("愉", 0.8, 1.0), ("快，", 1.05, 1.2),
             ("再见，", 1.7, 2.0), ("再见。", 2.6, 3.0)]
    pieces = split_by_speaker([_segment(words)], [SpeakerTurn(0.0, 1.02, 0), SpeakerTurn(1.02, 3.2, 1)])
    assert [(p.segment.text, p.cluster) for p in pieces] == [("祝您生活愉快，", 0), ("再见，再见。", 1)]
    # …and a clause's first word left behind with the other speaker goes on with its clause
    words = [("开放", 0.0, 0.4), ("了，", 0.4, 0.6), ("您", 1.2, 1.35), ("还有", 1.4, 1.7), ("别的", 1.7, 2.0),
             ("需要吗？", 2.0, 2.5)]
    pieces = split_by_speaker([_segment(words)], [SpeakerTurn(0.0, 1.38, 1), SpeakerTurn(1.38, 3.0, 0)])
    assert [(p.segment.text, p.cluster) for p in pieces] == [("开放了，", 1), ("您还有别的需要吗？", 0)]


def test_a_cut_at_a_pause_stays_where_the_turns_put_it():
    # 好的，对 | 我是: the customer's 对 sits apart from the agent's clause; the pause says who said it
    words = [("好", 0.0, 0.2), ("的", 0.2, 0.4), ("对，", 1.3, 1.5), ("我", 1.55, 1.7), ("是", 1.7, 1.9)]
    pieces = split_by_speaker([_segment(words)], [SpeakerTurn(0.0, 1.0, 0), SpeakerTurn(1.0, 2.0, 1)])
    assert [(p.segment.text, p.cluster) for p in pieces] == [("好的", 0), ("对，我是", 1)]


def test_split_by_speaker_trims_a_word_that_runs_into_the_other_turn():
    segment = _segment([("订", 4.3, 5.2), ("单号", 5.2, 5.8)])  # Whisper pinned 订 0.7 s early
    pieces = split_by_speaker([segment], [SpeakerTurn(0.0, 4.5, 1), SpeakerTurn(4.5, 6.0, 0)])
    assert [(p.segment.text, p.cluster) for p in pieces] == [("订单号", 0)]
    assert pieces[0].segment.start == 4.5 and pieces[0].segment.words[0].start == 4.5


def test_split_by_speaker_without_words_and_outside_turns():
    bare = RawSegment(0, 10.0, 11.0, "嗯", -0.2, 0.0, 1.0, ())
    far = _segment([("再见", 30.0, 30.5)])
    pieces = split_by_speaker([far, bare], [SpeakerTurn(9.0, 12.0, 1), SpeakerTurn(20.0, 25.0, 0)])
    assert [(p.segment.text, p.cluster) for p in pieces] == [("嗯", 1), ("再见", 0)]  # sorted; nearest turn
    assert split_by_speaker([bare], []) == []


def test_agent_cluster_follows_the_cues_not_the_order():
    pieces = [
        SpeakerSegment(_segment([("喂你好", 0.2, 1.0)]), 1),
        SpeakerSegment(_segment([("您好天联宽带客服热线工号一零零一", 1.5, 5.0)]), 0),
        SpeakerSegment(_segment([("我家宽带上不了网", 6.0, 8.0)]), 1),
        SpeakerSegment(_segment([("感谢您的来电再见", 9.0, 10.0)]), 0),
    ]
    assert agent_cluster(pieces) == 0
    assert [role for _s, role in speaker_roles(pieces)] == [CUSTOMER, AGENT, CUSTOMER, AGENT]


def test_agent_cluster_by_homophones_and_tie_break():
    # Whisper's 公號 for 工号 and 克服 for 客服 still count.
    pieces = [SpeakerSegment(_segment([("嗯", 0.0, 0.3)]), 0), SpeakerSegment(_segment([("我是公號1001的克服", 1.0, 3.0)]), 1)]
    assert agent_cluster(pieces) == 1
    no_cues = [SpeakerSegment(_segment([("是吗", 2.0, 2.3)]), 0), SpeakerSegment(_segment([("喂你好", 0.5, 0.8)]), 1)]
    assert agent_cluster(no_cues) == 1  # whoever answers first
    assert agent_cluster(no_cues, "outbound") == 0  # the callee answers: nothing tells, the lowest cluster
    one_char = [SpeakerSegment(_segment([("嗯", 2.0, 2.3)]), 1), SpeakerSegment(_segment([("好", 0.5, 0.8)]), 0)]
    assert agent_cluster(one_char) == 0  # a 嗯 does not say who answered
    assert agent_cluster([]) == 0


def test_window_levels_follow_loudness_not_pauses():
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 300 * t)
    loud = np.concatenate([0.5 * tone, np.zeros(SR)])  # one second spoken, one second of pause
    quiet = 0.05 * tone
    levels = window_levels(np.concatenate([loud, quiet]), [(0.0, 2.0), (2.0, 3.0)], SR)
    assert levels[0] - levels[1] == pytest.approx(20.0, abs=0.5)  # the pause does not pull the loud one down


def _alike_voices(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    voice = rng.normal(size=192)
    return voice + 0.05 * rng.normal(size=(n, 192))


def test_refine_indistinct_splits_alike_voices_by_level():
    # One voice model for both sides (cosine of the clusters' means ~1), the line 15 dB under the headset:
    # the voice clusters cut across the roles; the levels tell them apart.
    rng = np.random.default_rng(1)
    roles = np.array([0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 1])
    levels = np.where(roles == 0, -20.0, -35.0) + rng.normal(scale=1.0, size=len(roles))
    voice_labels = np.array([0, 1] * 8)
    refined = refine_indistinct(_alike_voices(len(roles)), voice_labels, levels)
    assert refined.tolist() == roles.tolist()
    # none: the voice clusters stand; no levels measured: likewise
    none = DiarizeOptions(channel_features="none")
    assert refine_indistinct(_alike_voices(len(roles)), voice_labels, levels, none).tolist() == voice_labels.tolist()
    assert refine_indistinct(_alike_voices(len(roles)), voice_labels, None).tolist() == voice_labels.tolist()
    # one level throughout: nothing to split on, the voice clusters stand
    flat = np.full(len(roles), -20.0)
    assert refine_indistinct(_alike_voices(len(roles)), voice_labels, flat).tolist() == voice_labels.tolist()
    with pytest.raises(ValueError, match="channel_features"):
        refine_indistinct(_alike_voices(len(roles)), voice_labels, levels, DiarizeOptions(channel_features="pitch"))


def test_refine_indistinct_leaves_distinct_voices_alone():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=192), rng.normal(size=192)  # two voices, cosine ~0
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1, 0, 1])
    embeddings = np.stack([a if k == 0 else b for k in labels]) + 0.05 * rng.normal(size=(len(labels), 192))
    levels = rng.normal(loc=-25.0, scale=8.0, size=len(labels))  # levels that would split otherwise
    assert refine_indistinct(embeddings, labels, levels).tolist() == labels.tolist()


def test_viterbi_follows_the_ratios_but_pays_for_each_change():
    llr = np.array([3.0, 3.0, -1.0, 3.0, 3.0])  # > 0: cluster 0
    assert viterbi_two(llr, np.full(4, 4.0)).tolist() == [0, 0, 0, 0, 0]  # two changes (8) cost more than 1
    assert viterbi_two(llr, np.zeros(4)).tolist() == [0, 0, 1, 0, 0]  # free changes: each window its own
    assert viterbi_two(np.array([3.0, 3.0, -10.0, 3.0, 3.0]), np.full(4, 4.0)).tolist() == [0, 0, 1, 0, 0]
    assert viterbi_two(np.array([-2.0, -2.0, 5.0, 5.0]), np.array([4.0, 0.5, 4.0])).tolist() == [1, 1, 0, 0]
    assert viterbi_two(np.zeros(0), np.zeros(0)).tolist() == []


def test_a_change_costs_less_across_a_longer_pause():
    regions = [(0.0, 3.0), (3.2, 5.0), (7.0, 8.0)]
    windows = windows_for(regions, duration_s=10.0)
    costs = switch_costs(regions, windows)
    options = DiarizeOptions()
    region = [r for _s, _e, r in windows]
    inside = [c for c, a, b in zip(costs, region, region[1:]) if a == b]
    across = [c for c, a, b in zip(costs, region, region[1:]) if a != b]
    assert inside and all(c == options.switch_cost for c in inside)
    assert across == pytest.approx([options.switch_cost * np.exp(-0.2 / 0.5), options.switch_cost * np.exp(-2.0 / 0.5)])


def _embedded(turns: list[tuple[str, float, float]], voices: dict[str, np.ndarray], seed: int = 0,
              noise: float = 0.3) -> tuple[Embedded, np.ndarray]:
    """Windows over `turns` (speaker, start, end; one speech region each unless two touch), each
    embedded as its speaker's voice plus noise; and the speaker (0 for the first voice) of each."""
    rng = np.random.default_rng(seed)
    regions: list[tuple[float, float]] = []
    for _who, start, end in turns:
        if regions and regions[-1][1] == start:
            regions[-1] = (regions[-1][0], end)
        else:
            regions.append((start, end))
    windows = windows_for(regions, duration_s=turns[-1][2] + 1.0)
    names = list(voices)

    def speaker(s: float, e: float) -> int:
        middle = (s + e) / 2
        return names.index(next(who for who, a, b in turns if a <= middle <= b))

    truth = np.array([speaker(s, e) for s, e, _r in windows])
    embeddings = np.stack([voices[names[k]] for k in truth]) + noise * rng.normal(size=(len(truth), 192)) / np.sqrt(192)
    return Embedded(regions, windows, embeddings), truth


def test_resegment_fixes_a_flicker_inside_a_turn():
    # One long agent sentence after a pause, one of its windows nearer the customer's voice (8 kHz
    # AMR smears the voices): the clustering gives it the customer; the Viterbi gives it back.
    rng = np.random.default_rng(3)
    agent, customer = rng.normal(size=(2, 192)) / np.sqrt(192)
    turns = [("agent", 0.0, 6.0), ("customer", 7.0, 12.0), ("agent", 13.0, 22.0), ("customer", 23.0, 28.0)]
    embedded, truth = _embedded(turns, {"agent": agent, "customer": customer})
    flicker = int(np.flatnonzero(np.array([s for s, _e, _r in embedded.windows]) >= 16.0)[0])
    embedded.embeddings[flicker] = 0.48 * agent + 0.52 * customer
    clustered = truth.copy()
    clustered[flicker] = 1
    x = embedded.embeddings / np.linalg.norm(embedded.embeddings, axis=1, keepdims=True)
    # the speaker models, too, put it nearer the customer, by less than two changes of speaker cost
    assert -2 * DiarizeOptions().switch_cost < window_llr(x, clustered)[flicker] < 0
    viterbi = DiarizeOptions(resegment="viterbi")
    assert resegment(embedded, clustered, None, viterbi).tolist() == truth.tolist()
    assert resegment(embedded, clustered, None, DiarizeOptions()).tolist() == clustered.tolist()  # none: as clustered


@pytest.mark.parametrize("pause_s", [0.0, 0.3, 2.0])
def test_resegment_never_merges_two_long_well_separated_turns(pause_s):
    rng = np.random.default_rng(4)
    voices = dict(zip(("agent", "customer"), rng.normal(size=(2, 192)) / np.sqrt(192)))
    turns = [("agent", 0.0, 8.0), ("customer", 8.0 + pause_s, 16.0), ("agent", 16.0 + pause_s, 24.0)]
    embedded, truth = _embedded(turns, voices, noise=0.6)
    assert resegment(embedded, truth, None, DiarizeOptions(resegment="viterbi")).tolist() == truth.tolist()
    # ... nor a short answer between two pauses when the voices are apart
    short = [("agent", 0.0, 8.0), ("customer", 9.0, 10.2), ("agent", 11.0, 19.0)]
    embedded, truth = _embedded(short, voices, noise=0.6)
    assert resegment(embedded, truth, None, DiarizeOptions(resegment="viterbi")).tolist() == truth.tolist()


def test_resegment_is_named_in_the_speaker_model_id(tmp_path, monkeypatch):
    import qa_pipeline.speakers.diarize as diarize_module

    model = tmp_path / "campplus-zh-en.onnx"
    model.write_bytes(b"0" * 10)
    monkeypatch.setattr(diarize_module, "default_model_path", lambda: model)
    plain = speaker_model_id(DiarizeOptions())
    assert plain == "campplus-zh-en.onnx:10:fixed:words:level@0.89" and resegment_id(DiarizeOptions()) == ""
    viterbi = speaker_model_id(DiarizeOptions(resegment="viterbi"))
    assert viterbi == plain + ":viterbi:4~0.5sx2"
    assert speaker_model_id(DiarizeOptions(resegment="viterbi", resegment_passes=1)) != viterbi
    with pytest.raises(ValueError, match="unknown resegment 'hmm'"):
        resegment(*_embedded([("a", 0.0, 4.0), ("b", 5.0, 9.0)], {"a": np.ones(192), "b": -np.ones(192)}),
                  None, DiarizeOptions(resegment="hmm"))


def test_missing_model_names_the_install_command(tmp_path):
    with pytest.raises(SpeakerModelMissing, match="install_speaker_model.sh"):
        SpeakerEmbedder(tmp_path / "nope.onnx")
    assert "install_speaker_model.sh" in INSTALL_COMMAND


@pytest.fixture(scope="module")
def embedder() -> SpeakerEmbedder:
    path = default_model_path()
    if not path.is_file():
        pytest.skip(f"CAM++ speaker model not installed at {path} (install it with `{INSTALL_COMMAND}`)")
    return SpeakerEmbedder(path)


def test_embedder_gives_unit_comparable_vectors(embedder):
    voice = _chirp_and_tone()
    vector = embedder.embed(voice)
    assert vector.shape == (192,) and np.isfinite(vector).all()
    batch = embedder.embed_windows(np.concatenate([voice, voice]), [(0.0, 1.0), (1.0, 2.0), (0.25, 0.75)])
    assert batch.shape == (3, 192)
    np.testing.assert_allclose(batch[0], vector, atol=1e-4)
    np.testing.assert_allclose(batch[1], vector, atol=1e-4)


@pytest.mark.parametrize("resegmentation", ["none", "viterbi"])
def test_real_mono_call_turns_match_the_reference(embedder, calls_dir, data_dir, resegmentation):
    """dev_11 (mono 8 kHz): every reference turn, 对 included, lands on its speaker's cluster."""
    from qa_pipeline.audio.decode import decode
    from qa_pipeline.speakers.diarize import speech_regions

    reference = json.loads((data_dir / "dev_labels.json").read_text(encoding="utf-8"))["dev_11"]["turns"]
    audio = decode(calls_dir / "dev_11.wav")
    samples = audio.channels[0]
    turns = diarize(samples, audio.sample_rate, speech_regions(samples), embedder=embedder,
                    options=DiarizeOptions(resegment=resegmentation))
    assert turns and all(0 <= t.start < t.end <= audio.duration_s for t in turns)
    assert all(a.end <= b.start for a, b in zip(turns, turns[1:]))

    def majority(start: float, end: float) -> int:
        overlap = np.zeros(2)
        for t in turns:
            overlap[t.cluster] += max(0.0, min(end, t.end) - max(start, t.start))
        return int(overlap.argmax())

    clusters = [majority(t["start"], t["end"]) for t in reference]
    agent = clusters[0]
    assert [AGENT if c == agent else CUSTOMER for c in clusters] == [t["speaker"] for t in reference]

    # With the reference text as the words, the cues pick the agent's cluster.
    segments = [_segment([(t["text"], t["start"], t["end"])]) for t in reference]
    pieces = split_by_speaker(segments, turns)
    assert agent_cluster(pieces) == agent
    assert [role for _s, role in speaker_roles(pieces)] == [t["speaker"] for t in reference]


def test_with_words_keeps_the_speech_regions_where_whisper_heard_words():
    from qa_pipeline.speakers.diarize import with_words

    words = [RawWord("您好", 1.0, 1.5, 0.9), RawWord("请", 1.7, 2.0, 0.9), RawWord("对", 9.0, 9.3, 0.9)]
    segments = [RawSegment(0, 1.0, 2.0, "您好请", -0.2, 0.1, 1.0, tuple(words[:2])),
                RawSegment(0, 9.0, 9.3, "对", -0.2, 0.1, 1.0, (words[2],))]
    # a region of babble over a hold (3-8 s) holds no word and is left out; words 0.2 s apart are one stretch
    regions = [(0.5, 2.5), (3.0, 8.0), (8.8, 10.0)]
    assert with_words(regions, segments) == [(0.9, 2.1), (8.9, 9.4)]
    assert with_words(regions, []) == []


def test_unknown_regions_are_refused():
    from qa_pipeline.speakers.diarize import call_regions

    with pytest.raises(ValueError, match="unknown regions 'all'"):
        call_regions(np.zeros(SR, np.float32), [], DiarizeOptions(regions="all"))
