from pathlib import Path

from qa_pipeline.records import CallMeta
from qa_pipeline.speakers import agent_channel, build_transcript
from qa_pipeline.transcribe import RawSegment, RawWord


def seg(channel, start, end, text, words=None):
    if words is None:
        step = (end - start) / max(len(text), 1)
        words = [RawWord(ch, start + i * step, start + (i + 1) * step, 0.9) for i, ch in enumerate(text)]
    return RawSegment(channel, start, end, text, -0.3, 0.1, 1.2, tuple(words))


META = CallMeta(call_id="c1", path=Path("c1.wav"))
OPENING = [seg(1, 0.5, 6.0, "您好，这里是天联宽带客服热线，我是工号一零零一"), seg(0, 6.5, 9.0, "你好，我的宽带坏了")]


def test_agent_channel_from_manifest_wins():
    meta = CallMeta(call_id="c1", path=Path("c1.wav"), agent_channel=0)
    assert agent_channel(OPENING, meta, 2) == (0, "manifest")


def test_agent_channel_from_content_when_manifest_is_blank():
    assert agent_channel(OPENING, META, 2) == (1, "content")


def test_agent_channel_default_without_cues_and_none_on_mono():
    assert agent_channel([seg(0, 0, 1, "喂"), seg(1, 1, 2, "喂")], META, 2) == (0, "default")
    assert agent_channel(OPENING, META, 1) == (None, None)


def test_transcript_roles_ids_and_order():
    t = build_transcript(META, OPENING, duration_s=10.0, n_channels=2, model="base")
    assert [(u.speaker, u.channel) for u in t.utterances] == [("agent", 1), ("customer", 0)]
    assert [u.utterance_id for u in t.utterances] == ["c1-00000", "c1-00001"]
    assert (t.agent_channel, t.agent_channel_method) == (1, "content")


def test_traditional_output_is_simplified_and_raw_kept():
    t = build_transcript(META, [seg(0, 0, 2, "請問還有什麼可以幫您")], duration_s=3, n_channels=1, model="base")
    assert t.utterances[0].text == "请问还有什么可以帮您"
    assert t.utterances[0].raw_text == "請問還有什麼可以幫您"
    assert t.utterances[0].speaker == "unknown"


def test_loop_is_trimmed_and_speech_before_it_kept():
    words = [RawWord("感谢您的来电,", 50.0, 51.0, 0.9), RawWord("再见,", 51.0, 51.5, 0.9)]
    words += [RawWord("谢谢,", 51.5 + i * 0.1, 51.6 + i * 0.1, 0.5) for i in range(12)]
    text = "".join(w.text for w in words)
    t = build_transcript(META, [seg(0, 50.0, 52.7, text, words)], duration_s=60, n_channels=1, model="base")
    assert [u.text for u in t.utterances] == ["感谢您的来电,再见,谢谢,"]
    assert t.drop_reasons == ("repetition loop",)
    assert t.dropped[0].text.startswith("谢谢,谢谢,")


def test_stray_first_word_rejoins_its_sentence():
    # Whisper pinned 你 to the segment start, 4 s before the rest of 你没听明白
    words = [RawWord("你", 36.0, 36.8, 0.6), RawWord("没", 40.7, 40.9, 0.9), RawWord("听", 40.9, 41.1, 0.9),
             RawWord("明白,", 41.1, 41.5, 0.9)]
    t = build_transcript(META, [seg(1, 36.0, 41.5, "你没听明白,", words)], duration_s=60, n_channels=2, model="base")
    assert [u.text for u in t.utterances] == ["你没听明白,"]
    assert t.utterances[0].start > 39.5


def test_long_pause_splits_into_two_utterances():
    words = [RawWord("请您稍等", 10.0, 11.0, 0.9), RawWord("让您久等了", 24.0, 25.0, 0.9)]
    t = build_transcript(META, [seg(0, 10.0, 25.0, "请您稍等让您久等了", words)], duration_s=30, n_channels=1, model="base")
    assert [(u.text, u.start, u.end) for u in t.utterances] == [("请您稍等", 10.0, 11.0), ("让您久等了", 24.0, 25.0)]
