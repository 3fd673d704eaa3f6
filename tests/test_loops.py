"""Looped stretches found on Whisper's segments and decoded again (asr.loops), with a stand-in
decoder that returns what a careful decode would."""

import numpy as np

from qa_pipeline.asr.loops import loop_spans, redecode_loops
from qa_pipeline.records import RawSegment, RawWord


def seg(channel, start, end, text, ratio=1.2):
    step = (end - start) / max(len(text), 1)
    words = tuple(RawWord(ch, start + i * step, start + (i + 1) * step, 0.9) for i, ch in enumerate(text))
    return RawSegment(channel, start, end, text, -0.3, 0.1, ratio, words)


DIGIT_LOOP = seg(0, 24.4, 36.6, "9-1-1-1-0-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1", ratio=11.2)
SPEECH = [seg(0, 20.0, 23.9, "请问您家的房号是多少"), seg(1, 21.0, 22.0, "别的声道"), seg(0, 40.0, 42.0, "让您久等了")]


class CarefulDecoder:
    """Returns `text` as one segment over the stretch asked for, and records what was asked."""

    def __init__(self, text):
        self.text, self.asked = text, []

    def redecode(self, channel, samples, start, end):
        self.asked.append((channel, round(start, 2), round(end, 2)))
        return [seg(channel, start + 0.3, end - 0.3, self.text)] if self.text else []


def test_loop_spans_find_loops_inside_a_segment_and_across_segments_merged_per_channel():
    run = [seg(1, 50.0 + i, 50.8 + i, "想要一起去找我") for i in range(4)]
    assert loop_spans(SPEECH) == []
    assert loop_spans(SPEECH + [DIGIT_LOOP] + run) == [(0, 24.4, 36.6), (1, 50.0, 53.8)]
    overlapping = seg(0, 30.0, 38.0, "好好好好好好好好")
    assert loop_spans([DIGIT_LOOP, overlapping]) == [(0, 24.4, 38.0)]


def test_a_looped_stretch_is_replaced_by_its_careful_decode_and_nothing_else_changes():
    decoder = CarefulDecoder("九栋一单元一一零二，楼上是一二零二，对吗？对。我查一下上次的报修记录，请稍等。")
    channels = [np.zeros(16000 * 60, np.float32), np.zeros(16000 * 60, np.float32)]
    out = redecode_loops(decoder, channels, SPEECH + [DIGIT_LOOP])
    assert decoder.asked == [(0, 24.1, 36.9)]
    assert [s.text for s in out] == ["请问您家的房号是多少", "别的声道", decoder.text, "让您久等了"]
    assert out == sorted(out, key=lambda s: (s.start, s.channel))


def test_a_stretch_that_loops_again_or_comes_back_empty_is_left_for_the_guards():
    channels = [np.zeros(16000 * 60, np.float32)]
    for decoder in (CarefulDecoder("1-1-1-1-1-1-1-1-1-1-1-1"), CarefulDecoder("")):
        out = redecode_loops(decoder, channels, [SPEECH[0], DIGIT_LOOP])
        assert out == [SPEECH[0], DIGIT_LOOP]
