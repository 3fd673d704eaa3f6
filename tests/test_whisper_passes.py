"""Whisper's encoder and word alignment run a batch a few windows at a time on the CPU (memory,
issue 12): the real model on the two bundled calls gives the same words, times and probabilities
whether a batch's windows are encoded and aligned all at once or one at a time."""

import pytest

from qa_pipeline.asr import transcribe
from qa_pipeline.asr.transcribe import Transcriber, align_groups
from qa_pipeline.audio.decode import decode


def test_align_groups_bound_windows_times_the_longest_tokens():
    assert align_groups([448] * 16, 4 * 448) == [(0, 3), (3, 6), (6, 9), (9, 12), (12, 15), (15, 16)]  # 3 and the longest
    assert align_groups([100] * 16, 4 * 448) == [(0, 16)]  # short windows: one call
    assert align_groups([10, 10, 448, 10], 600) == [(0, 1), (1, 2), (2, 3), (3, 4)]  # each with the longest
    assert align_groups([10, 10, 300, 10], 900) == [(0, 2), (2, 4)]  # 2 and the longest
    assert align_groups([900], 600) == [(0, 1)]  # longer than the bound alone: still aligned
    assert align_groups([], 600) == []


@pytest.mark.slow
def test_windows_encoded_and_aligned_apart_give_the_same_words_to_the_last_bit(calls_dir, monkeypatch):
    calls = [decode(calls_dir / name).channels for name in ("dev_07.wav", "dev_11.wav")]
    transcriber = Transcriber("base", device="cpu", cpu_threads=2)
    model = transcriber._model.model._model  # CTranslate2's Whisper, under EasedWhisper
    sizes: dict[str, list[int]] = {"encode": [], "align": []}

    class Counted:  # CTranslate2's own calls, counted by how many windows each one took
        def __getattr__(self, name):
            return getattr(model, name)

        def encode(self, features, *args, **kwargs):
            sizes["encode"].append(features.shape[0])
            return model.encode(features, *args, **kwargs)

        def align(self, features, start, tokens, *args, **kwargs):
            sizes["align"].append(len(tokens))
            return model.align(features, start, tokens, *args, **kwargs)

    transcriber._model.model._model = Counted()

    def run(encode_windows: int, align_tokens: int):
        monkeypatch.setattr(transcribe, "ENCODE_MAX_WINDOWS", encode_windows)
        monkeypatch.setattr(transcribe, "ALIGN_MAX_TOKENS", align_tokens)
        sizes["encode"].clear(), sizes["align"].clear()
        segments = transcriber.transcribe_many(calls)
        return segments, sizes["encode"][:], sizes["align"][:]

    whole, whole_encoded, whole_aligned = run(10**6, 10**9)
    apart, apart_encoded, apart_aligned = run(1, 1)
    assert max(whole_encoded) >= 4 and max(whole_aligned) >= 4  # the two calls' windows share a batch
    assert set(apart_encoded) == {1} and sum(apart_encoded) == sum(whole_encoded)
    # each window aligned apart, with its batch's longest window along (CTranslate2 pads to it)
    assert set(apart_aligned) == {1, 2} and len(apart_aligned) == sum(whole_aligned)
    words = [[(s.channel, w.text, w.start, w.end, w.prob) for s in segments for w in s.words] for segments in whole]
    assert all(len(call) > 20 for call in words)  # both calls heard
    assert apart == whole  # every segment: text, times, scores, and every word's start, end and probability


@pytest.mark.slow
def test_a_calls_words_do_not_depend_on_the_call_it_shares_a_batch_with(calls_dir):
    """Same input, same transcript: dev_11 transcribed alone, after dev_07 and before it (their windows
    share a batch, encoded and aligned together) gives the same words, times and probabilities."""
    a, b = (decode(calls_dir / name).channels for name in ("dev_07.wav", "dev_11.wav"))
    transcriber = Transcriber("base", device="cpu", cpu_threads=2)

    def words(segments):
        return [(s.channel, s.text, w.text, w.start, w.end, w.prob) for s in segments for w in s.words]

    alone = words(transcriber.transcribe_many([b])[0])
    assert len(alone) > 20
    assert words(transcriber.transcribe_many([a, b])[1]) == alone
    assert words(transcriber.transcribe_many([b, a])[0]) == alone
