"""The customer's mood: voice tracks from real and synthetic audio, features relative to the caller,
the shipped model on words and voice, the call's peak and end, and what the tables keep."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from factories import make_transcript, make_utterance
from qa_pipeline.audio.decode import decode_to_files
from qa_pipeline.batch.store import TranscriptCache
from qa_pipeline.meaning.cache import EmbeddingCache
from qa_pipeline.meaning.encoder import load_encoder
from qa_pipeline.mood.features import voice_features
from qa_pipeline.mood.model import load_mood_model
from qa_pipeline.mood.voice import VOICE_VERSION, pitch_track, voice_tracks, with_voice
from qa_pipeline.morning import moods_of
from qa_pipeline.output.tables import read_transcripts, write_transcripts
from qa_pipeline.records import AGENT, CUSTOMER, CachedAudio, VoiceTracks

CALLS = Path(__file__).resolve().parent / "data" / "calls"
SR = 16000


def telephone_voice(f0: float, seconds: float, level_db: float = -20.0) -> np.ndarray:
    """A voiced sound with harmonics 2–12 of f0 only (the telephone band removes the fundamental)."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t + k) / k for k in range(2, 13))
    x = x / np.sqrt(np.mean(x * x)) * 10 ** (level_db / 20)
    return x.astype(np.float32)


@pytest.mark.parametrize("f0", [110.0, 160.0, 240.0])
def test_pitch_is_found_without_the_fundamental(f0):
    x = telephone_voice(f0, 2.0)
    track = np.array(pitch_track([x], SR, 40))
    voiced = track[track > 0]
    assert len(voiced) >= 30
    assert abs(np.median(voiced) / f0 - 1) < 0.03


def test_silence_and_noise_have_no_pitch():
    rng = np.random.default_rng(0)
    quiet = np.zeros(SR, np.float32)
    noise = (rng.standard_normal(SR) * 0.05).astype(np.float32)
    assert set(pitch_track([quiet], SR, 20)) == {0}
    assert np.mean(np.array(pitch_track([noise], SR, 20)) > 0) < 0.2


def test_real_call_channels_are_pitched():
    decoded = decode_to_files(CALLS / "dev_07.wav", Path(__import__("tempfile").mkdtemp()) / "d")
    tracks = voice_tracks(decoded.channels, decoded.sample_rate)
    assert tracks.version == VOICE_VERSION and len(tracks.pitch) == decoded.n_channels == 2
    for pitch, level in zip(tracks.pitch, tracks.level):
        assert len(pitch) == len(level) == int(np.ceil(decoded.duration_s / 0.05))
        p = np.array(pitch)
        assert 0.05 < np.mean(p > 0) < 0.8  # speech is pitched, pauses are not
        assert 70 <= np.median(p[p > 0]) <= 400


def test_utterances_get_the_pitch_and_level_of_their_words():
    frames = 200  # 10 s
    pitch = [0] * frames
    level = [-90] * frames
    for f in range(40, 80):  # 2.0–4.0 s: the customer at 150 Hz, -24 dBFS
        pitch[f], level[f] = 150, -24
    for f in range(170, 190):  # 8.5–9.5 s: the same voice again
        pitch[f], level[f] = 150, -24
    for f in range(120, 160):  # 6.0–8.0 s: four semitones higher, 6 dB louder
        pitch[f], level[f] = 189, -18
    tracks = VoiceTracks(VOICE_VERSION, ((0,) * frames, tuple(pitch)), ((-90,) * frames, tuple(level)))
    t = make_transcript("c", ((AGENT, 0.2, 1.8, "您好，请问有什么可以帮您？"), (CUSTOMER, 2.0, 4.0, "我想问一下我的账单"),
                              (AGENT, 4.3, 5.8, "好的，您请讲"), (CUSTOMER, 6.0, 8.0, "怎么又多收了我的钱"),
                              (CUSTOMER, 8.5, 9.5, "我上个月就交过了")),
                        dropped=(), drop_reasons=())
    voiced = with_voice(t, tracks)
    customer = [u for u in voiced.utterances if u.speaker == CUSTOMER]
    assert [u.pitch_hz for u in customer] == [150.0, 189.0, 150.0]
    assert [u.level_db for u in customer] == [-24.0, -18.0, -24.0]
    assert all(u.pitch_hz is None for u in voiced.utterances if u.speaker == AGENT)
    v = voice_features(voiced)
    assert v[0].pitch_st == v[2].pitch_st == 0 and v[0].level_db == 0  # the median of the first three
    assert v[1].pitch_st == pytest.approx(12 * np.log2(189 / 150)) and v[1].level_db == 6


def test_voice_survives_the_tables_so_rescoring_needs_no_audio(tmp_path):
    t = make_transcript("c1")
    u = replace(t.utterances[1], pitch_hz=151.5, level_db=-23.0)
    t = replace(t, utterances=(t.utterances[0], u, *t.utterances[2:]))
    write_transcripts(tmp_path, [t])
    back = read_transcripts(tmp_path)["c1"]
    assert (back.utterances[1].pitch_hz, back.utterances[1].level_db) == (151.5, -23.0)
    assert back.utterances[0].pitch_hz is None


def test_the_cache_keeps_voice_tracks(tmp_path):
    cache = TranscriptCache(tmp_path)
    tracks = VoiceTracks(VOICE_VERSION, ((0, 120, 121),), ((-90, -20, -21),))
    cache.put("k1", CachedAudio(1.0, 1, (), (), voice=tracks))
    cache.put("k2", CachedAudio(1.0, 1, (), ()))
    assert cache.get("k1").voice == tracks
    assert cache.get("k2").voice is None  # measured again on first use


@pytest.fixture(scope="module")
def embeddings():
    return EmbeddingCache(load_encoder(), None)


def _call(lines, voices=None):
    t = make_transcript("m", lines, dropped=(), drop_reasons=(), duration_s=lines[-1][2] + 1)
    if voices:
        t = replace(t, utterances=tuple(replace(u, **voices.get(k, {})) for k, u in enumerate(t.utterances)))
    return t


def test_an_angry_customer_calmed_down(embeddings):
    t = _call((
        (AGENT, 0.3, 2.5, "您好，这里是燃气客服，请问有什么可以帮您？"),
        (CUSTOMER, 3.0, 6.0, "你好，我想问一下燃气费的事情。"),
        (AGENT, 6.4, 8.0, "好的，请您说。"),
        (CUSTOMER, 8.4, 12.0, "你们这服务也太差了，钱交了三天了还是用不了，我要投诉！"),
        (AGENT, 12.5, 16.0, "非常抱歉给您带来不便，我马上给您处理，半小时内恢复。"),
        (CUSTOMER, 16.4, 18.0, "好的，那我等着，谢谢你。"),
        (AGENT, 18.4, 19.5, "不客气，再见。"),
        (CUSTOMER, 19.8, 20.5, "再见。"),
    ))
    moods, requests = moods_of([t], embeddings)
    m = moods["m"]
    model = load_mood_model()
    assert [round(x.start, 1) for x in m.turns] == [3.0, 8.4, 16.4, 19.8]
    assert m.turns[1].frustration >= model.threshold > m.turns[0].frustration
    assert m.peak == m.turns[1].frustration and m.peak_at == 8.4
    assert m.end < model.threshold and m.deescalated
    assert requests["m"].text == "你好，我想问一下燃气费的事情。 / 你们这服务也太差了，钱交了三天了还是用不了，我要投诉！"


def test_the_voice_alone_raises_frustration(embeddings):
    lines = (
        (AGENT, 0.3, 2.5, "您好，请问有什么可以帮您？"),
        (CUSTOMER, 3.0, 6.0, "我想问一下快递什么时候能到。"),
        (AGENT, 6.4, 8.0, "好的，请您提供一下单号。"),
        (CUSTOMER, 8.4, 11.0, "单号我刚才已经发给你们了。"),
        (AGENT, 11.5, 13.0, "好的我查一下。"),
        (CUSTOMER, 12.0, 14.2, "那到底什么时候能送到？"),
    )
    calm = {1: {"pitch_hz": 150.0, "level_db": -24.0}, 3: {"pitch_hz": 152.0, "level_db": -24.0},
            5: {"pitch_hz": 151.0, "level_db": -24.0}}
    agitated = {**calm, 5: {"pitch_hz": 190.0, "level_db": -17.0}}
    plain = moods_of([_call(lines, calm)], embeddings)[0]["m"].turns[-1]
    loud = moods_of([_call(lines, agitated)], embeddings)[0]["m"].turns[-1]
    assert loud.overlap and loud.pitch_st > 3.5 and loud.level_db == 7
    assert loud.frustration > plain.frustration + 0.2
    assert loud.frustration >= load_mood_model().threshold


def test_a_call_without_customer_words_has_no_mood(embeddings):
    t = _call(((AGENT, 0.3, 2.5, "您好，请问有什么可以帮您？"),))
    m = moods_of([t], embeddings)[0]["m"]
    assert m.turns == () and m.peak is None and not m.deescalated
