import numpy as np
import pytest

from audio_factory import busy_tone, tone
from qa_pipeline.audio.decode import decode
from qa_pipeline.audio.tones import find_busy_tones


def test_busy_tone_after_speechlike_noise_is_found():
    rate = 16000
    rng = np.random.default_rng(1)
    signal = np.concatenate([0.1 * rng.standard_normal(rate * 3).astype(np.float32), np.zeros(rate), busy_tone(3.0, rate)])
    events = find_busy_tones(signal, rate, channel=1)
    assert len(events) == 1
    assert events[0].kind == "busy_tone" and events[0].channel == 1
    assert events[0].start == pytest.approx(4.0, abs=0.1)
    assert events[0].end == pytest.approx(7.0, abs=0.1)  # the last burst is cut short by the recording


def test_steady_450_hz_or_other_cadence_is_not_a_busy_tone():
    rate = 16000
    assert find_busy_tones(tone(450, 3.0, rate), rate) == []  # no on/off cadence
    assert find_busy_tones(busy_tone(3.0, rate, on=1.0, off=1.0), rate) == []  # wrong cadence
    assert find_busy_tones(np.zeros(rate * 2, np.float32), rate) == []


def test_busy_tone_in_a_real_call_is_on_the_customer_channel(calls_dir):
    audio = decode(calls_dir / "dev_07.wav")  # the agent is on channel 1; the customer hangs up
    events = [e for i, ch in enumerate(audio.channels) for e in find_busy_tones(ch, audio.sample_rate, channel=i)]
    assert [(e.channel, round(e.start), round(e.end)) for e in events] == [(0, 58, 61)]
