from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import pytest

from qa_pipeline.output.drops import drop_reason
from qa_pipeline.scoring.normalize import normalize_text
from qa_pipeline.records import CallMeta, RawSegment, RawWord
from qa_pipeline.speakers.cues import choose_agent
from qa_pipeline.speakers.roles import LEVEL_FRAME_S, agent_channel, build_transcript, channel_levels


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


def test_choose_agent_inbound_first_speaker_outweighs_a_customer_greeting():
    # The agent's opening garbled (no formula heard); the customer's 您好 inside the opening window.
    lanes = {0: [(0.4, "为安泰人气特夫小高"), (9.0, "好的")], 1: [(3.0, "您好，我家电表不走了")]}
    choice = choose_agent(lanes, "inbound")
    assert choice.agent == 0 and choice.decided
    assert [(e.lane, e.service, e.request, e.first) for e in choice.evidence] == [(0, 0, 0, True), (1, 1, 1, False)]
    assert choose_agent(lanes, None).agent == 0  # unknown direction: as inbound


def test_choose_agent_outbound_callee_answers_first():
    lanes = {0: [(0.5, "喂，哪位")], 1: [(2.0, "您好，天联宽带客服热线，工号一零零一")]}
    assert choose_agent(lanes, "outbound").agent == 1
    assert not any(e.first for e in choose_agent(lanes, "outbound").evidence)
    # The same call taken as inbound: a single formula does not outweigh answering first …
    assert choose_agent({0: [(0.5, "喂，哪位")], 1: [(2.0, "您好")]}, "inbound").agent == 0
    # … three formulae do.
    assert choose_agent(lanes, "inbound").agent == 1


def test_choose_agent_customer_requests_count_against_a_lane():
    # Both greet; the lane that speaks first asks for its own need: the other lane is the agent's.
    lanes = {0: [(0.3, "您好，我想投诉你们的师傅")], 1: [(2.0, "您好，请讲")]}
    choice = choose_agent(lanes, "inbound")
    assert choice.agent == 1
    assert {e.lane: e.request for e in choice.evidence} == {0: 3, 1: 0}


def test_choose_agent_without_evidence():
    assert choose_agent({}).agent is None
    undecided = choose_agent({0: [(0.0, "嗯")], 1: [(1.0, "哦")]}, "inbound")
    assert undecided.agent == 0 and not undecided.decided
    # Outbound, no formula either side: who spoke first does not tell when it is no phone answer …
    outbound = choose_agent({0: [(3.0, "好的好的")], 1: [(0.5, "对对对")]}, "outbound")
    assert outbound.agent == 0 and not outbound.decided
    assert agent_channel([seg(0, 3.0, 4.0, "好的好的"), seg(1, 0.5, 1.0, "对对对")],
                         CallMeta(call_id="c1", path=Path("c1.wav"), direction="outbound"), 2) == (0, "default")
    # … and when it is, the lane that picked up is the callee's (issue 24)
    picked_up = choose_agent({0: [(3.0, "好的好的")], 1: [(0.5, "喂哪位")]}, "outbound")
    assert picked_up.agent == 0 and picked_up.decided
    assert agent_channel([seg(0, 3.0, 4.0, "好的好的"), seg(1, 0.5, 1.0, "喂哪位")],
                         CallMeta(call_id="c1", path=Path("c1.wav"), direction="outbound"), 2) == (0, "content")


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


# --- channel bleed ------------------------------------------------------------------------------


def levels(seconds: float, *loud: tuple[int, float, float, int]) -> tuple[tuple[int, ...], ...]:
    """Two channels' 50 ms levels: -70 dBFS, and `db` on `channel` from `start` to `end`."""
    n = int(seconds / LEVEL_FRAME_S)
    out = [[-70] * n, [-70] * n]
    for channel, start, end, db in loud:
        for f in range(int(start / LEVEL_FRAME_S), int(end / LEVEL_FRAME_S)):
            out[channel][f] = max(out[channel][f], db)
    return tuple(tuple(ch) for ch in out)


AGENT_LINE = "您好，这里是天联宽带客服热线，请问有什么可以帮您"


def test_faint_copy_on_the_other_channel_is_dropped_as_bleed():
    # the agent (channel 1) at -20 dBFS; channel 0 hears the same words at -40 and Whisper writes them
    # down slightly differently (homophones count as the same words)
    segments = [seg(1, 1.0, 5.0, AGENT_LINE), seg(0, 1.1, 5.0, "你好这里是天连宽带克服热线请问有什么可以帮你"),
                seg(0, 6.0, 8.0, "我家宽带断了")]
    lv = levels(10, (1, 1.0, 5.0, -20), (0, 1.0, 5.0, -40), (0, 6.0, 8.0, -22), (1, 6.0, 8.0, -42))
    t = build_transcript(META, segments, duration_s=10, n_channels=2, model="base", levels=lv)
    assert [(u.channel, u.text) for u in t.utterances] == [(1, AGENT_LINE), (0, "我家宽带断了")]
    assert t.drop_reasons == ("channel bleed (20 dB below the other channel)",)
    assert t.dropped[0].channel == 0 and t.dropped[0].start == 1.1
    # without levels (an entry cached before they were kept) nothing is dropped
    t = build_transcript(META, segments, duration_s=10, n_channels=2, model="base")
    assert len(t.utterances) == 3 and t.dropped == ()


def test_a_piece_that_runs_on_into_a_faint_copy_of_the_other_channel_keeps_its_own_words():
    # the customer's 没有了谢谢你 at -22 dBFS, then channel 0 hears the agent's 好的再见 at -42 while the
    # agent (channel 1) says it at -20; Whisper wrote both into one segment of channel 0
    segments = [seg(1, 1.0, 5.0, AGENT_LINE), seg(0, 6.0, 8.0, "我家宽带断了"), seg(0, 9.0, 14.0, "没有了谢谢你好的再见"),
                seg(1, 12.0, 14.0, "好的再见")]
    lv = levels(16, (1, 1.0, 5.0, -20), (0, 6.0, 8.0, -22), (0, 9.0, 12.0, -22), (0, 12.0, 14.0, -42),
                (1, 12.0, 14.0, -20))
    t = build_transcript(META, segments, duration_s=16, n_channels=2, model="base", levels=lv, split_gap_s=2.0)
    assert [(u.channel, u.text) for u in t.utterances] == [(1, AGENT_LINE), (0, "我家宽带断了"), (0, "没有了谢谢你"),
                                                           (1, "好的再见")]
    assert [(d.channel, d.text) for d in t.dropped] == [(0, "好的再见")]
    assert t.drop_reasons == ("channel bleed (22 dB below the other channel)",)


def test_unsure_words_written_over_the_other_sides_speech_are_dropped():
    # babble behind the caller while the agent talks: Whisper half-hears it on channel 0
    unsure = [RawWord(ch, 10.2 + 0.3 * i, 10.5 + 0.3 * i, 0.3) for i, ch in enumerate("那家店的名字")]
    segments = [seg(1, 1.0, 5.0, AGENT_LINE), seg(0, 6.0, 8.0, "我家宽带断了"),
                seg(1, 9.0, 13.0, "好的，我帮您查一下您家的线路"), seg(0, 10.2, 12.0, "那家店的名字", unsure),
                seg(0, 11.0, 12.5, "对对对")]  # the caller's own talk-over, heard clearly, stays
    t = build_transcript(META, segments, duration_s=14, n_channels=2, model="base")
    assert [(u.channel, u.text) for u in t.utterances] == [
        (1, AGENT_LINE), (0, "我家宽带断了"), (1, "好的，我帮您查一下您家的线路"), (0, "对对对")]
    assert [d.text for d in t.dropped] == ["那家店的名字"]
    assert t.drop_reasons[0].startswith("unsure words over the other channel's speech (100% of it, word probability 0.30)")
    assert drop_reason(t.drop_reasons[0]) == "对方说话时识别出的低置信度文字（100% 的时间与对方声道重叠，识别概率 0.30）"


def test_a_piece_is_not_dropped_for_overlapping_a_hallucination_that_goes_first():
    # the agent's own line, Whisper unsure of it on a noisy trunk (0.55), and babble on the caller's
    # side written over it (0.3): the babble goes, and the agent's line then overlaps nothing
    agent_words = [RawWord(ch, 9.0 + 0.25 * i, 9.25 + 0.25 * i, 0.55) for i, ch in enumerate("好的我帮您查一下线路")]
    babble = [RawWord(ch, 9.0 + 0.4 * i, 9.4 + 0.4 * i, 0.3) for i, ch in enumerate("那家店的名字")]
    segments = [seg(1, 1.0, 5.0, AGENT_LINE), seg(0, 6.0, 8.0, "我家宽带断了"),
                seg(1, 9.0, 11.5, "好的我帮您查一下线路", agent_words), seg(0, 9.0, 11.4, "那家店的名字", babble)]
    t = build_transcript(META, segments, duration_s=14, n_channels=2, model="base")
    assert [(u.channel, u.text) for u in t.utterances] == [
        (1, AGENT_LINE), (0, "我家宽带断了"), (1, "好的我帮您查一下线路")]
    assert [d.text for d in t.dropped] == ["那家店的名字"]


def test_talk_over_is_kept():
    # the customer talks over the agent, loud on their own channel: other words, same time
    segments = [seg(1, 1.0, 5.0, AGENT_LINE), seg(0, 3.0, 5.0, "我家宽带断了")]
    lv = levels(10, (1, 1.0, 5.0, -20), (0, 3.0, 5.0, -24))
    t = build_transcript(META, segments, duration_s=10, n_channels=2, model="base", levels=lv)
    assert len(t.utterances) == 2 and t.dropped == ()
    # both say the same at once, each loud on their own channel
    segments = [seg(1, 1.0, 1.6, "好的"), seg(0, 1.1, 1.7, "好的")]
    lv = levels(10, (1, 1.0, 1.6, -20), (0, 1.1, 1.7, -23))
    t = build_transcript(META, segments, duration_s=10, n_channels=2, model="base", levels=lv)
    assert len(t.utterances) == 2 and t.dropped == ()


def test_quiet_speech_saying_something_else_is_kept():
    # a quiet customer over a loud agent: much lower, but not the same words
    segments = [seg(1, 1.0, 5.0, AGENT_LINE), seg(0, 2.0, 4.0, "喂喂听得到吗")]
    lv = levels(10, (1, 1.0, 5.0, -15), (0, 2.0, 4.0, -35))
    t = build_transcript(META, segments, duration_s=10, n_channels=2, model="base", levels=lv)
    assert len(t.utterances) == 2 and t.dropped == ()


# --- noise transcribed as words -----------------------------------------------------------------


def noisy_levels(seconds: float, *speech: tuple[int, float, float]) -> tuple[tuple[int, ...], ...]:
    """Channel 0 clean (-70 dBFS, the agent at -20 in syllables wherever `speech` says channel 0);
    channel 1 under steady noise, -38 ± 2 dBFS frame to frame, with syllables (150 ms at -18,
    100 ms dips back to the noise) where `speech` says channel 1."""
    n = int(seconds / LEVEL_FRAME_S)
    out = [[-70] * n, [-38 + (2 if f % 3 == 0 else -2 if f % 3 == 1 else 0) for f in range(n)]]
    for channel, start, end in speech:
        for f in range(int(start / LEVEL_FRAME_S), int(end / LEVEL_FRAME_S)):
            if f % 5 < 3:
                out[channel][f] = -20 if channel == 0 else -18
    return tuple(tuple(ch) for ch in out)


def unsure(channel, start, end, text, prob):
    step = (end - start) / len(text)
    words = [RawWord(ch, start + i * step, start + (i + 1) * step, prob) for i, ch in enumerate(text)]
    return RawSegment(channel, start, end, text, -0.6, 0.5, 1.2, tuple(words))


def test_unsure_words_over_steady_noise_are_dropped_as_noise():
    # the customer's channel (1) carries noise only while the agent speaks; Whisper writes words there
    segments = [seg(0, 1.0, 5.0, AGENT_LINE), unsure(1, 1.5, 4.5, "我正在把你放下你了", 0.2),
                unsure(1, 6.0, 8.0, "我家宽带断了", 0.5)]
    lv = noisy_levels(10, (0, 1.0, 5.0), (1, 6.0, 8.0))
    meta = CallMeta(call_id="c1", path=Path("c1.wav"), agent_channel=0)
    t = build_transcript(meta, segments, duration_s=10, n_channels=2, model="base", levels=lv)
    assert [(u.channel, u.text) for u in t.utterances] == [(0, AGENT_LINE), (1, "我家宽带断了")]
    assert [u.text for u in t.dropped] == ["我正在把你放下你了"]
    assert t.drop_reasons[0].startswith("noise-like audio (") and "word probability 0.20" in t.drop_reasons[0]
    assert "噪声" in drop_reason(t.drop_reasons[0])


def test_on_mono_words_written_over_the_line_noise_during_a_hold_are_dropped():
    # one channel: the agent (1-5 s), a silent hold over the customer's steady noise (5-14 s) where Whisper
    # wrote unsure words, the customer (14-16 s); the hold is then a wait again
    n = int(17 / LEVEL_FRAME_S)
    noise = [-38 + (2 if f % 3 == 0 else -2 if f % 3 == 1 else 0) for f in range(n)]
    for a, b in ((1.0, 5.0), (14.0, 16.0)):
        for f in range(int(a / LEVEL_FRAME_S), int(b / LEVEL_FRAME_S)):
            if f % 5 < 3:
                noise[f] = -18
    segments = [seg(0, 1.0, 5.0, AGENT_LINE), unsure(0, 7.0, 9.0, "周末要最重要的", 0.3),
                unsure(0, 14.0, 16.0, "我家宽带断了", 0.5)]
    meta = CallMeta(call_id="c1", path=Path("c1.wav"))
    t = build_transcript(meta, segments, duration_s=17, n_channels=1, model="base", levels=(tuple(noise),),
                         speaker_turns=[(1.0, 5.0, 0), (7.0, 9.0, 1), (14.0, 16.0, 1)])
    assert [u.text for u in t.utterances] == [AGENT_LINE, "我家宽带断了"]
    assert [u.text for u in t.dropped] == ["周末要最重要的"] and t.drop_reasons[0].startswith("noise-like audio (")


def test_noise_guard_keeps_confident_words_syllables_and_loose_timing():
    meta = CallMeta(call_id="c1", path=Path("c1.wav"), agent_channel=0)
    lv = noisy_levels(10, (0, 1.0, 5.0), (1, 6.0, 8.0))
    # Whisper sure of its words over the noise: not this guard's to judge
    t = build_transcript(meta, [unsure(1, 1.5, 4.5, "我正在把你放下你了", 0.9)], duration_s=10, n_channels=2,
                         model="base", levels=lv)
    assert len(t.utterances) == 1 and t.dropped == ()
    # words Whisper timed just after the syllables that carry them (pinned 0.2 s late, almost no length)
    t = build_transcript(meta, [unsure(1, 8.2, 8.2003, "嗯好的", 0.4)], duration_s=10, n_channels=2, model="base", levels=lv)
    assert len(t.utterances) == 1 and t.dropped == ()
    # a one-syllable answer a noisy line barely lifts is never judged by its level
    t = build_transcript(meta, [unsure(1, 2.0, 2.3, "对", 0.1)], duration_s=10, n_channels=2, model="base", levels=lv)
    assert len(t.utterances) == 1 and t.dropped == ()
    # a clean channel's floor is line silence: unsure speech on it stands far out of it
    t = build_transcript(meta, [unsure(0, 1.0, 5.0, AGENT_LINE, 0.3)], duration_s=10, n_channels=2, model="base", levels=lv)
    assert len(t.utterances) == 1 and t.dropped == ()


def test_channel_levels_are_whole_dbfs_per_50_ms_frame():
    rate = 16000
    loud = np.full(rate // 2, 0.1, np.float32)  # -20 dBFS
    quiet = np.zeros(rate // 2 + 100, np.float32)
    lv = channel_levels([np.concatenate([loud, quiet]), np.concatenate([quiet, loud])], rate)
    assert len(lv) == 2 and len(lv[0]) == len(lv[1]) == 21  # 1.00625 s: the last frame padded
    assert lv[0][:10] == (-20,) * 10 and lv[0][11:] == (-100,) * 10
    assert lv[1][:10] == (-100,) * 10 and lv[1][11:20] == (-20,) * 9 and lv[1][20] < -20  # padded


# --- real calls through the pipeline's transcribe stage (Whisper) ------------------------------


def _stage(cache_dir):
    from qa_pipeline.batch.config import TranscribeConfig
    from qa_pipeline.batch.stages import TranscribeStage
    from qa_pipeline.batch.store import TranscriptCache

    return TranscribeStage(TranscribeConfig(cache_dir=cache_dir), TranscriptCache(cache_dir))


def _doubled(t) -> list[tuple[str, str]]:
    """Pairs of utterances on different channels that say the same thing at the same time."""
    return [(a.utterance_id, b.utterance_id) for i, a in enumerate(t.utterances) for b in t.utterances[i + 1:]
            if a.channel != b.channel and normalize_text(a.text) == normalize_text(b.text)
            and a.start < b.end and b.start < a.end]


@pytest.mark.slow
def test_agent_on_the_right_channel_found_without_a_manifest(tmp_path, calls_dir, transcript_cache):
    """dev_07: stereo, the agent on channel 1, no agent_channel given: the opening's cues decide."""
    stage = _stage(transcript_cache)
    t = stage.run(CallMeta(call_id="dev_07", path=calls_dir / "dev_07.wav")).transcript
    assert (t.n_channels, t.agent_channel, t.agent_channel_method) == (2, 1, "content")
    assert all(u.speaker == ("agent" if u.channel == 1 else "customer") for u in t.utterances)
    assert t.utterances[0].speaker == "agent"
    assert _doubled(t) == []


@pytest.mark.slow
def test_bleed_on_real_audio_appears_once(tmp_path, calls_dir, transcript_cache):
    """dev_07 with the agent's channel mixed into the customer's at -20 dB (crosstalk)."""
    from audio_factory import encode
    from qa_pipeline.audio.decode import decode

    audio = decode(calls_dir / "dev_07.wav")
    left, right = audio.channels
    mixed = encode(tmp_path / "dev_07_bleed.wav", np.stack([left + 0.1 * right, right]), audio.sample_rate,
                   codec="pcm_s16le")
    stage = _stage(transcript_cache)
    t = stage.run(CallMeta(call_id="dev_07_bleed", path=mixed, agent_channel=1)).transcript
    assert _doubled(t) == []
    bled = [u for u, why in zip(t.dropped, t.drop_reasons) if why.startswith("channel bleed")]
    assert bled and all(u.channel == 0 for u in bled)
    # the agent's words are all still there, on the agent's channel
    clean = stage.run(CallMeta(call_id="dev_07", path=calls_dir / "dev_07.wav", agent_channel=1)).transcript
    agent_text = "".join(normalize_text(u.text) for u in t.utterances if u.channel == 1)
    clean_text = "".join(normalize_text(u.text) for u in clean.utterances if u.channel == 1)
    assert SequenceMatcher(None, clean_text, agent_text, autojunk=False).ratio() > 0.9


def test_a_loop_across_segments_on_mono_is_dropped_with_its_reason_whichever_cluster_it_lands_on():
    speech = [seg(0, 0.5, 5.0, "您好，这里是客服热线，请问有什么可以帮您"), seg(0, 5.5, 8.0, "我的宽带坏了"),
              seg(0, 8.5, 10.0, "好的请您稍等")]
    loop = [seg(0, 12.0 + i, 12.8 + i, "想要一起去找我") for i in range(6)]
    after = [seg(0, 20.0, 23.0, "让您久等了，已经修好了")]
    turns = [(0.5, 5.0, 0), (5.5, 8.0, 1), (8.5, 10.0, 0), (12.0, 15.0, 1), (15.0, 18.0, 0), (20.0, 23.0, 0)]
    t = build_transcript(META, speech + loop + after, duration_s=30.0, n_channels=1, model="base", speaker_turns=turns)
    assert [u.text for u in t.utterances] == ["您好，这里是客服热线，请问有什么可以帮您", "我的宽带坏了", "好的请您稍等", "让您久等了，已经修好了"]
    assert [u.speaker for u in t.utterances] == ["agent", "customer", "agent", "agent"]
    assert len(t.dropped) == 6 and {u.speaker for u in t.dropped} == {"agent", "customer"}
    assert all(r.startswith("repeated across segments (6x '想要一起去找我'") for r in t.drop_reasons)


def test_the_same_answer_on_a_stereo_channel_between_the_other_sides_turns_is_kept():
    agent = [seg(1, 0.5, 4.0, "您好，客服热线，请问您是张先生吗"), seg(1, 5.0, 8.0, "您的地址是人民路一号吗"),
             seg(1, 9.0, 12.0, "电话是这个号码吗")]
    customer = [seg(0, 4.2, 4.6, "对的"), seg(0, 8.2, 8.6, "对的"), seg(0, 12.2, 12.6, "对的")]
    t = build_transcript(META, agent + customer, duration_s=15.0, n_channels=2, model="base")
    assert [u.text for u in t.utterances if u.speaker == "customer"] == ["对的", "对的", "对的"]
    assert t.dropped == ()


def test_a_loop_spread_over_pauses_in_one_segment_is_cut_before_the_pause_split():
    copies = [RawWord("我也是，", 10.0 + 3 * i, 10.6 + 3 * i, 0.9) for i in range(6)]  # 2.4 s pauses
    loop = RawSegment(0, 10.0, 25.6, "我也是，" * 6, -0.15, 0.8, 3.0, tuple(copies))
    speech = seg(0, 0.5, 4.0, "您好，客服热线，请问有什么可以帮您")
    t = build_transcript(META, [speech, loop], duration_s=30.0, n_channels=2, model="base")
    assert [u.text for u in t.utterances] == ["您好，客服热线，请问有什么可以帮您", "我也是，"]
    assert t.drop_reasons == ("repetition loop",)


def test_on_mono_a_second_of_speech_between_two_pieces_of_the_other_voice_is_theirs():
    opening = [seg(0, 0.5, 5.0, "您好，这里是客服热线，请问有什么可以帮您"), seg(0, 5.5, 8.0, "我的宽带坏了，一直连不上")]
    middle = [seg(0, 8.5, 11.0, "好的，已经给您登记了"), seg(0, 11.1, 11.9, "您还有"), seg(0, 12.0, 13.5, "别的需要吗")]
    answers = [seg(0, 14.5, 15.2, "没了"), seg(0, 16.0, 17.5, "好的，再见"), seg(0, 18.1, 18.6, "嗯"),
               seg(0, 19.2, 21.0, "祝您生活愉快")]
    # the clusters flicker on 您还有; 嗯 is the customer's, said in a pause longer than SLIVER_GAP_S
    turns = [(0.5, 5.0, 0), (5.5, 8.0, 1), (8.5, 11.0, 0), (11.1, 11.9, 1), (12.0, 13.5, 0), (14.5, 15.2, 1),
             (16.0, 17.5, 0), (18.1, 18.6, 1), (19.2, 21.0, 0)]
    t = build_transcript(META, opening + middle + answers, duration_s=25.0, n_channels=1, model="base",
                         speaker_turns=turns, split_gap_s=0.05)
    said = [(u.speaker, u.text) for u in t.utterances]
    assert ("agent", "您还有") in said and ("customer", "没了") in said and ("customer", "嗯") in said, said
    assert [s for s, _ in said].count("customer") == 3, said


def test_on_mono_a_short_piece_right_after_the_other_voice_stops_mid_sentence_carries_it_on():
    opening = [seg(0, 0.5, 5.0, "您好，这里是客服热线，请问有什么可以帮您"), seg(0, 5.5, 8.0, "我的宽带坏了，一直连不上")]
    rest = [seg(0, 8.5, 11.0, "好的已经登记了您这边还有别"), seg(0, 11.05, 12.0, "的问题吗"), seg(0, 13.0, 14.0, "没有了"),
            seg(0, 15.0, 17.0, "您现在方便试一下吗？"), seg(0, 17.05, 17.6, "方便")]
    turns = [(0.5, 5.0, 0), (5.5, 8.0, 1), (8.5, 11.0, 0), (11.05, 12.0, 1), (13.0, 14.0, 1), (15.0, 17.0, 0),
             (17.05, 17.6, 1)]
    t = build_transcript(META, opening + rest, duration_s=20.0, n_channels=1, model="base", speaker_turns=turns,
                         split_gap_s=0.02)
    said = [(u.speaker, u.text) for u in t.utterances]
    # 方便 answers a finished question: the customer's
    assert ("agent", "的问题吗") in said and ("customer", "没有了") in said and ("customer", "方便") in said, said
