import pytest

from qa_pipeline.asr.guards import check_segment, repeated_runs
from qa_pipeline.asr.transcribe import split_on_pauses
from qa_pipeline.records import RawSegment, RawWord


def seg(text, *, no_speech=0.1, logprob=-0.3, ratio=1.2, start=0.0, end=2.0, words=()):
    return RawSegment(0, start, end, text, logprob, no_speech, ratio, tuple(words))


@pytest.mark.parametrize(
    "text,reason",
    [
        ("字幕由Amara.org社区提供", "boilerplate"),
        ("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目", "boilerplate"),
        ("谢谢观看", "boilerplate"),
        ("欢迎点赞订阅", "boilerplate"),
        ("好的好的好的好的好的好的", "repetition loop"),
        ("请稍等请稍等请稍等请稍等", "repetition loop"),
        ("。。，", "empty text"),
    ],
)
def test_hallucinations_are_dropped_with_a_reason(text, reason):
    assert reason in check_segment(seg(text), text)


def test_silence_with_low_confidence_is_dropped():
    assert "likely silence" in check_segment(seg("嗯", no_speech=0.9, logprob=-1.5), "嗯")


@pytest.mark.parametrize("text", ["您好，请问有什么可以帮您？", "对对对", "哈哈哈", "手机号是13905728846", "谢谢，再见",
                                  "焙香咖啡订阅服务，我是岳蓝", "我先把订阅调出来，请稍等一下", "我帮您转发给技术部"])
def test_ordinary_speech_is_kept(text):
    assert check_segment(seg(text), text) is None


def test_confident_speech_with_high_no_speech_prob_is_kept():
    assert check_segment(seg("好的，我帮您查一下", no_speech=0.8, logprob=-0.3), "好的，我帮您查一下") is None


def test_split_on_pauses_cuts_at_long_word_gaps():
    words = [RawWord("请您", 0.0, 0.4, 0.9), RawWord("稍等", 0.4, 0.8, 0.9), RawWord("让您", 13.0, 13.3, 0.9), RawWord("久等了", 13.3, 13.9, 0.9)]
    pieces = split_on_pauses(seg("请您稍等让您久等了", end=13.9, words=words), 1.0)
    assert [(p.text, p.start, p.end) for p in pieces] == [("请您稍等", 0.0, 0.8), ("让您久等了", 13.0, 13.9)]
    assert split_on_pauses(seg("请您稍等", words=words[:2]), 1.0)[0].text == "请您稍等"


def test_packed_windows_map_words_back_to_their_channel_and_time():
    from types import SimpleNamespace

    import numpy as np

    from qa_pipeline.asr.transcribe import pack_windows, render_windows, unpack_segment

    regions = [(0, 1.0, 3.0), (0, 10.0, 11.0), (1, 4.0, 6.0)]
    windows = pack_windows(regions, max_s=30.0, pause_s=1.0)
    assert [[(p.channel, p.start, p.end) for p in w.placements] for w in windows] == [
        [(0, 1.0, 3.0), (0, 10.0, 11.0)], [(1, 4.0, 6.0)]]
    channels = [np.zeros(16000 * 12, np.float32), np.zeros(16000 * 12, np.float32)]
    joined, clips, placed = render_windows(windows, channels, pause_s=1.0, noise_floor=0.0)
    # each window starts on a whole second at least 4 s after the last; window 1: 2 s + 1 s pause
    # + 1 s + 1 s trailing pause; window 2: 2 s + 1 s
    assert [(round(c["start"], 2), round(c["end"], 2)) for c in clips] == [(4.0, 9.0), (13.0, 16.0)]
    assert len(joined) == 16 * 16000
    assert [(p.channel, p.at) for p in placed] == [(0, 4.0), (0, 7.0), (1, 13.0)]

    def word(text, start, end):
        return SimpleNamespace(word=text, start=start, end=end, probability=0.9)

    segment = SimpleNamespace(avg_logprob=-0.2, no_speech_prob=0.1, compression_ratio=1.0,
                              words=[word("请稍等", 4.5, 5.5), word("久等了", 7.2, 7.8)])
    pieces = unpack_segment(segment, placed)
    assert [(p.channel, p.text, p.start, p.end) for p in pieces] == [(0, "请稍等", 1.5, 2.5), (0, "久等了", 10.2, 10.8)]
    other = SimpleNamespace(avg_logprob=-0.2, no_speech_prob=0.1, compression_ratio=1.0, words=[word("对", 13.5, 13.8)])
    assert [(p.channel, p.start, p.end) for p in unpack_segment(other, placed)] == [(1, 4.5, 4.8)]


def test_gpu_batch_size_follows_free_memory_and_model_size():
    from qa_pipeline.asr.transcribe import batch_size_for

    gib = 2**30
    assert batch_size_for(70 * gib, "large-v3") == 43  # half of 70 GiB / 0.8 GiB per window
    assert batch_size_for(70 * gib, "base") == 64  # capped
    assert batch_size_for(4 * gib, "large-v3") == 8  # floor
    assert batch_size_for(20 * gib, "/models/whisper-small-ct2") == 50


def test_repeated_runs_find_a_phrase_said_back_to_back():

    loop = [(10.0 + i, 10.5 + i, "想要一起去找我。") for i in range(6)]
    pieces = [(0.0, 3.0, "您好，请问有什么可以帮您")] + loop + [(20.0, 22.0, "让您久等了")]
    assert repeated_runs(pieces) == [tuple(range(1, 7))]
    # copies doubled or cut at the end of a segment are copies still
    ragged = [(0.0, 1.0, "我也是,我也是,"), (1.2, 2.0, "我也是,"), (5.0, 5.5, "我也是,"), (9.0, 10.0, "我也是,我也是,我")]
    assert repeated_runs(ragged) == [(0, 1, 2, 3)]


def test_repeated_runs_spare_short_answers_and_phrases_far_apart():

    answers = [(0.0, 0.4, "对"), (5.0, 5.4, "对。"), (9.0, 9.5, "对")]  # three confirmations: speech
    assert repeated_runs(answers) == []
    assert repeated_runs(answers + [(12.0, 12.3, "对"), (13.0, 13.3, "对")]) == [(0, 1, 2, 3, 4)]
    holds = [(0.0, 1.0, "请您稍等"), (40.0, 41.0, "请您稍等"), (90.0, 91.0, "请您稍等")]  # three holds
    assert repeated_runs(holds) == []
    twice = [(0.0, 1.0, "想要一起去找我"), (1.0, 2.0, "想要一起去找我"), (2.0, 3.0, "别的")]
    assert repeated_runs(twice) == []


def test_a_region_is_decoded_only_by_a_piece_that_starts_inside_it():
    from qa_pipeline.asr.transcribe import Placement, decoded

    asked, answered = Placement(0, 86.45, 89.33), Placement(0, 89.33, 91.82)
    after = seg("没有了，谢谢", start=89.33, end=91.43)  # the next region's words start where `asked` ends
    assert not decoded(asked, [after])  # so `asked` is decoded again on its own
    assert decoded(answered, [after])
    assert decoded(asked, [seg("请问还有其他可以帮您的吗", start=86.66, end=88.97)])
    assert not decoded(asked, [RawSegment(1, 86.66, 88.97, "对", -0.2, 0.1, 1.0, ())])  # another channel's
