from qa_pipeline.asr.transcribe import TranscribeOptions
from qa_pipeline.batch.store import TranscriptCache, cache_key
from qa_pipeline.files import file_digest
from qa_pipeline.records import AudioEvent, CachedAudio, RawSegment, RawWord


def entry():
    words = (RawWord("您好", 0.1, 0.5, 0.9),)
    return CachedAudio(12.5, 2, (RawSegment(1, 0.1, 0.5, "您好", -0.2, 0.05, 1.1, words),), (AudioEvent("busy_tone", 10.0, 12.0, 1),))


def test_round_trip(tmp_path):
    cache = TranscriptCache(tmp_path)
    key = cache_key("abc", "base", TranscribeOptions().cache_key())
    assert cache.get(key) is None
    cache.put(key, entry())
    assert cache.get(key) == entry()
    assert not list(tmp_path.rglob(".tmp-*"))


def test_key_changes_with_audio_model_and_options(tmp_path):
    options = TranscribeOptions().cache_key()
    base = cache_key("abc", "base", options)
    assert base == cache_key("abc", "base", TranscribeOptions().cache_key())
    assert base != cache_key("abd", "base", options)
    assert base != cache_key("abc", "small", options)
    assert base != cache_key("abc", "base", TranscribeOptions(beam_size=5).cache_key())


def test_digest_is_of_content_not_name(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"same")
    (tmp_path / "b.wav").write_bytes(b"same")
    (tmp_path / "c.wav").write_bytes(b"other")
    assert file_digest(tmp_path / "a.wav") == file_digest(tmp_path / "b.wav") != file_digest(tmp_path / "c.wav")


def test_corrupt_entry_is_a_miss(tmp_path):
    cache = TranscriptCache(tmp_path)
    cache.put("k1", entry())
    next(tmp_path.rglob("k1.json")).write_text("{not json")
    assert cache.get("k1") is None


def test_mono_speaker_turns_are_kept_with_the_diarizer_that_made_them(tmp_path, monkeypatch):
    from dataclasses import replace

    from qa_pipeline.batch import stages

    monkeypatch.setattr(stages, "speaker_model_id", lambda: "campplus-zh-en.onnx:1:auto")
    cache = TranscriptCache(tmp_path)
    mono = replace(entry(), n_channels=1, speaker_turns=((0.1, 0.5, 0),), diarizer="campplus-zh-en.onnx:1:auto")
    cache.put("k1", mono)
    assert cache.get("k1") == mono
    assert not stages.TranscribeStage._undiarized(cache.get("k1"))
    # turns cached before the diarizer was recorded, or by another clustering, are made again
    assert stages.TranscribeStage._undiarized(replace(mono, diarizer=None))
    assert stages.TranscribeStage._undiarized(replace(mono, diarizer="campplus-zh-en.onnx:1:fixed"))
    assert stages.TranscribeStage._undiarized(replace(mono, speaker_turns=None))
