"""What the phone system adds (issue 24): outbound calls picked up by the customer, line echo on
stereo, recorded announcements on the agent's side."""

import json
from pathlib import Path

import numpy as np
import pytest

from qa_pipeline.audio.decode import decode
from qa_pipeline.output.drops import drop_reason
from qa_pipeline.records import CallMeta, RawSegment, RawWord
from qa_pipeline.scoring.rubric import RubricError, load_rubric, parse_rubric, rubric_path_default
from qa_pipeline.scoring.score import score_call
from qa_pipeline.speakers.cues import choose_agent, is_phone_answer
from qa_pipeline.speakers.echo import echo_paths
from qa_pipeline.speakers.roles import LEVEL_FRAME_S, build_transcript, channel_levels


def seg(channel, start, end, text, gaps=()):
    """A segment whose words are its characters, evenly spread; `gaps`: (after character i, seconds)
    pauses inserted between words."""
    pause = dict(gaps)
    step = (end - start - sum(pause.values())) / max(len(text), 1)
    words, t = [], start
    for i, ch in enumerate(text):
        words.append(RawWord(ch, t, t + step, 0.9))
        t += step + pause.get(i, 0.0)
    return RawSegment(channel, start, end, text, -0.3, 0.1, 1.2, tuple(words))


def meta(**kw):
    return CallMeta(call_id="c1", path=Path("c1.wav"), **kw)


# --- outbound: the customer picks up --------------------------------------------------------------


@pytest.mark.parametrize("text", ["喂，你好？", "为,你好", "喂，哪位呀？", "喂？", "你好，哪位？", "喂，请问你是哪位？", "喂，你好，请问找谁？",
                                  "喂,老妹呀"])
def test_a_phone_answer(text):
    assert is_phone_answer(text)


@pytest.mark.parametrize("text", ["您好，请问是何先生吗？", "对，我是", "好的", "喂，您好，我是客服小王", "您好，请问", "你好，请问有什么事",
                                  "喂，您好，请问是王先生吗"])
def test_not_a_phone_answer(text):
    assert not is_phone_answer(text)


def test_outbound_the_lane_that_picks_up_is_the_customer_even_without_agent_formulae():
    # an outbound agent who says none of the inbound formulae (no 工号 / 客服 / 有什么可以帮)
    lanes = {0: [(0.3, "喂，哪位啊？"), (7.8, "是我，有什么事吗？"), (23.0, "那我周末过去看看吧")],
             1: [(2.3, "你好，请问是周女士吗？我是融动健身的会籍顾问小冯"), (10.0, "您的年卡下个月到期")]}
    choice = choose_agent(lanes, "outbound")
    assert choice.agent == 1 and choice.decided
    assert [e.answers for e in choice.evidence] == [True, False]
    assert "picks up" in choice.describe()
    # the same lanes on an inbound call: the first speaker is taken for the agent, as before
    assert choose_agent(lanes, "inbound").agent == 0


def test_outbound_an_agent_who_speaks_first_is_not_taken_for_the_callee():
    lanes = {0: [(0.4, "您好，请问是何先生吗？"), (6.0, "我是康源体检中心的客服小杨")], 1: [(2.0, "对，我是，哪位啊？")]}
    choice = choose_agent(lanes, "outbound")
    assert choice.agent == 0 and not any(e.answers for e in choice.evidence)


def test_outbound_mono_roles_follow_the_pick_up():
    segments = [seg(0, 0.3, 1.6, "喂，哪位啊？"), seg(0, 2.3, 7.1, "你好，请问是周女士吗？我是融动健身的会籍顾问小冯。"),
                seg(0, 7.8, 9.4, "是我，有什么事吗？"), seg(0, 10.0, 15.0, "您的年卡下个月十五号到期了。")]
    turns = [(0.3, 1.6, 0), (2.3, 7.1, 1), (7.8, 9.4, 0), (10.0, 15.0, 1)]
    t = build_transcript(meta(direction="outbound"), segments, duration_s=16.0, n_channels=1, model="base",
                         speaker_turns=turns)
    assert [u.speaker for u in t.utterances] == ["customer", "agent", "customer", "agent"]


# --- line echo on stereo ----------------------------------------------------------------------------


def with_echo(channels, source: int, db: float, delay_ms: float, rate: int):
    """The call with `source`'s voice leaking into the other channel, `db` down and `delay_ms` late."""
    out = [c.astype(np.float64).copy() for c in channels]
    d = int(round(delay_ms / 1000 * rate))
    out[1 - source][d:] += channels[source][: len(channels[source]) - d] * 10 ** (db / 20)
    return [c.astype(np.float32) for c in out]


@pytest.mark.parametrize("db, delay_ms", [(-20, 20), (-25, 40), (-30, 80)])
def test_echo_path_found_on_real_audio(calls_dir, db, delay_ms):
    """dev_07 (stereo, the agent on channel 1) with the agent's voice echoed into the customer's channel."""
    audio = decode(calls_dir / "dev_07.wav")
    assert echo_paths(channel_levels(audio.channels, audio.sample_rate)) == {}  # the clean call has none
    echoed = with_echo(audio.channels, 1, db, delay_ms, audio.sample_rate)
    paths = echo_paths(channel_levels(echoed, audio.sample_rate))
    assert list(paths) == [0]
    path = paths[0]
    assert path.source == 1 and abs(path.gain_db - db) <= 3 and abs(path.delay_ms - delay_ms) <= 60
    assert path.describe().startswith(f"line echo (the other channel {-path.gain_db:.0f} dB down, ")


def test_crosstalk_in_both_directions_is_no_echo_path(calls_dir):
    # two channels that each carry speech of their own, talking over each other, are not an echo
    audio = decode(calls_dir / "dev_07.wav")
    swapped = [audio.channels[0] + audio.channels[1][::-1][: len(audio.channels[0])], audio.channels[1]]
    assert echo_paths(channel_levels(swapped, audio.sample_rate)) == {}


def echo_levels(seconds: float, agent: list[tuple[float, float]], customer: list[tuple[float, float]],
                gain_db: float = -25, lag: int = 1):
    """Channel 1 the agent (-20 dBFS in syllables), channel 0 the customer (-23) plus the agent's
    echo `gain_db` down, `lag` frames late; a -60 dBFS floor."""
    n = int(seconds / LEVEL_FRAME_S)
    a = np.full(n, -60.0)
    for start, end in agent:
        for f in range(int(start / LEVEL_FRAME_S), int(end / LEVEL_FRAME_S)):
            a[f] = -20 - 6 * (f % 4 == 3) - 3 * (f % 7 == 0)
    c = np.full(n, -60.0)
    c[lag:] = np.maximum(c[lag:], a[:n - lag] + gain_db)
    for start, end in customer:
        for f in range(int(start / LEVEL_FRAME_S), int(end / LEVEL_FRAME_S)):
            c[f] = -23 - 5 * (f % 3 == 2)
    return (tuple(int(v) for v in c), tuple(int(v) for v in a))


def test_echoed_agent_sentences_are_dropped_whatever_whisper_heard_in_them():
    agent = [(1.0, 6.0), (9.0, 14.0), (18.0, 24.0)]
    customer = [(6.5, 8.5), (14.5, 17.5), (20.0, 22.0)]  # the last one talks over the agent
    lv = echo_levels(30, agent, customer)
    segments = [seg(1, 1.0, 6.0, "您好，星联移动，工号四四一二，请问您需要办理什么业务"),
                seg(0, 1.1, 6.0, "你好今年一重刚算是一样写了一期"),  # the echo, heard as other words
                seg(0, 6.5, 8.5, "我这个月话费怎么扣了两百多"),
                seg(1, 9.0, 14.0, "请问您的手机号码是多少"), seg(0, 9.1, 13.0, "明天更越有越多的"),
                seg(0, 14.5, 17.5, "一三九二八四六五五零七"),
                seg(1, 18.0, 24.0, "您是要查本月的话费明细对吗"), seg(0, 20.0, 22.0, "对对就是这个")]
    t = build_transcript(meta(agent_channel=1), segments, duration_s=30, n_channels=2, model="base", levels=lv)
    assert [u.text for u in t.utterances if u.speaker == "customer"] == [
        "我这个月话费怎么扣了两百多", "一三九二八四六五五零七", "对对就是这个"]
    echo = [(u.text, why) for u, why in zip(t.dropped, t.drop_reasons) if why.startswith("line echo")]
    assert [text for text, _why in echo] == ["你好今年一重刚算是一样写了一期", "明天更越有越多的"]
    assert echo[0][1] == "line echo (the other channel 25 dB down, 50 ms late)"
    assert drop_reason(echo[0][1]) == "线路回声（对方声道的声音晚 50 毫秒、低 25 dB 传回本声道）"


# --- recorded announcements -------------------------------------------------------------------------


PROMPT = "您好，欢迎致电乐看视频，为了提高服务质量，您的通话可能会被录音。"
OPENING = "乐看视频技术支持，工号二一四，请问您遇到什么问题？"


def prompt_call(agent_opening: str = OPENING, *, merged: bool = True):
    """Stereo, the agent on channel 1: the announcement, then the agent's opening (in one Whisper
    segment, a 0.6 s pause between them, when `merged`), the customer, the agent's closing."""
    if merged:
        first = [seg(1, 0.4, 13.0, PROMPT + agent_opening, gaps=[(len(PROMPT) - 1, 0.6)])]
    else:
        first = [seg(1, 0.4, 6.5, PROMPT), seg(1, 7.1, 13.0, agent_opening)]
    return first + [seg(0, 13.6, 16.0, "我手机上的视频投不到电视上"), seg(1, 16.5, 19.0, "好的，还有其他问题吗？再见")]


@pytest.mark.parametrize("merged", [True, False])
def test_the_announcement_is_the_systems_not_the_agents(merged):
    t = build_transcript(meta(agent_channel=1), prompt_call(merged=merged), duration_s=20, n_channels=2, model="base")
    assert [(u.speaker, u.text) for u in t.utterances][:2] == [("system", PROMPT), ("agent", OPENING)]
    assert t.utterances[1].start - t.utterances[0].end >= 0.59  # cut at the pause, not inside a sentence


def glued(channel: int, start: float, end: float, prompt: str, agent: str, first_word_s: float) -> RawSegment:
    """One Whisper segment of an announcement and the agent's words after it, with no punctuation and
    no pause between its words: the pause went into the agent's first word, `first_word_s` long."""
    words = list(seg(channel, start, end, prompt + agent).words)
    n = len(prompt)
    words[n] = RawWord(words[n].text, words[n - 1].end, words[n - 1].end + first_word_s, 0.9)
    return RawSegment(channel, start, end, prompt + agent, -0.3, 0.1, 1.2, tuple(words))


def test_the_agents_greeting_glued_to_the_announcement_starts_the_agents_words():
    # the 您 of the agent's 您好 holds the pause (0.4 s: not long enough by itself)
    prompt, agent = "欢迎致电乐看视频本次通话可能会被录音", "您好乐看视频我是客服小叶请讲"
    segments = [glued(0, 0.4, 8.4, prompt, agent, 0.4), seg(0, 9.0, 11.0, "我想开一张发票")]
    t = build_transcript(meta(), segments, duration_s=12, n_channels=1, model="base",
                         speaker_turns=[(0.4, 8.4, 0), (9.0, 11.0, 1)])
    assert [(u.speaker, u.text) for u in t.utterances][:2] == [("system", prompt), ("agent", agent)]


def test_a_pause_whisper_gave_to_the_agents_first_word_ends_the_announcement():
    # 城 (the agent's first word) lasting 0.72 s holds the pause after the recording
    prompt, agent = "您的通话可能会被录音", "城通卡服务热线我是三二七号话务员请问您需要办理什么"
    segments = [glued(0, 0.3, 8.4, prompt, agent, 0.72), seg(1, 9.4, 12.4, "我的交通卡刷不了")]
    t = build_transcript(meta(agent_channel=0), segments, duration_s=13, n_channels=2, model="base")
    assert [(u.speaker, u.text) for u in t.utterances][:2] == [("system", prompt), ("agent", agent)]


@pytest.mark.parametrize(("heard", "system"), [
    ("您好，欢迎致电同心团建，您的通话将被入音。", True),  # 录音 heard as 入音: r for l, one close confusion
    ("正在为您传接人工服务，请稍候。", True),  # 转接 heard as 传接
    ("喂，野趣露营地，我是前台小何。", False),  # 露营 is not 录音: the cue's second syllable is heard as said
])
def test_an_announcement_heard_with_one_close_confusion(heard, system):
    segments = [seg(1, 0.3, 4.6, heard), seg(1, 5.2, 9.0, "我是客服小周，请问有什么可以帮您？"), seg(0, 9.8, 12.0, "我想订个团建")]
    t = build_transcript(meta(agent_channel=1), segments, duration_s=13, n_channels=2, model="base")
    assert (t.utterances[0].speaker == "system") is system


def test_please_wait_patiently_ends_an_announcement():
    segments = [seg(1, 0.1, 2.1, "您的通话可能会被录音，"), seg(1, 2.35, 3.8, "请耐心等待。"),
                seg(1, 4.6, 9.5, "你好，才聚招聘，我是客服小韩，您需要什么帮助？"), seg(0, 10.4, 13.6, "我在你们平台上投了简历")]
    t = build_transcript(meta(agent_channel=1), segments, duration_s=14, n_channels=2, model="base")
    assert [u.speaker for u in t.utterances][:2] == ["system", "agent"]
    assert t.utterances[1].text.startswith("你好")


def test_a_call_whose_only_greeting_is_in_the_announcement_fails_greeting():
    rubric = load_rubric(rubric_path_default())
    results = {}
    for name, opening in (("prompt only", OPENING), ("agent greets", "您好，" + OPENING)):
        t = build_transcript(meta(agent_channel=1), prompt_call(opening), duration_s=20, n_channels=2, model="base")
        score = score_call(t, meta(agent_channel=1), rubric, processed_at="2025-07-03T10:00:00")
        results[name] = {i.item_id: i for i in score.items}
    assert results["prompt only"]["greeting"].result == "fail"
    assert "您好" not in (results["prompt only"]["greeting"].evidence_text or "")
    # the agent's own 您好, said 7 s into the call, after a 6.5 s announcement, is the greeting
    assert results["agent greets"]["greeting"].result == "pass"
    assert results["agent greets"]["greeting"].evidence_start >= 7.0


def test_the_greetings_ten_seconds_count_from_the_end_of_a_long_announcement():
    # an 11 s announcement: the agent's 您好 at 11.6 s is the first thing the agent says
    long_prompt = "您好，欢迎致电阳光新能源，为了提高服务质量，本次通话将被录音，正在为您转接人工服务，请稍候。"
    segments = [seg(1, 0.4, 11.0, long_prompt), seg(1, 11.6, 15.0, "您好，阳光新能源，工号五三七，请讲"),
                seg(0, 15.6, 18.0, "我家的逆变器一直在响"), seg(1, 18.5, 21.0, "好的，还有其他问题吗？再见")]
    t = build_transcript(meta(agent_channel=1), segments, duration_s=22, n_channels=2, model="base")
    assert [u.speaker for u in t.utterances][:2] == ["system", "agent"]
    greeting = {i.item_id: i for i in score_call(t, meta(agent_channel=1), load_rubric(rubric_path_default()),
                                                 processed_at="2025-07-03T10:00:00").items}["greeting"]
    assert greeting.result == "pass" and greeting.evidence_start >= 11.6
    # the same words 11.6 s into a call without an announcement are past the greeting's window
    plain = build_transcript(meta(agent_channel=1), [seg(1, 0.4, 11.0, "嗯，嗯，稍等")] + segments[1:],
                             duration_s=22, n_channels=2, model="base")
    late = {i.item_id: i for i in score_call(plain, meta(agent_channel=1), load_rubric(rubric_path_default()),
                                             processed_at="2025-07-03T10:00:00").items}["greeting"]
    assert late.result == "fail"


def test_on_mono_the_announcement_is_taken_out_before_the_roles_are_chosen():
    # the announcement's voice fell into the customer's cluster; its 欢迎致电 / 为您 must not make
    # that cluster the agent's
    segments = [seg(0, 0.4, 6.5, "欢迎致电阳光新能源，本次通话将被录音，正在为您转接人工服务，请稍候。"),
                seg(0, 7.2, 10.0, "阳光新能源，工号五三七，请讲"), seg(0, 10.6, 13.0, "我家的逆变器一直在响"),
                seg(0, 13.5, 16.0, "您告诉我屏幕上显示的代码")]
    turns = [(0.4, 6.5, 1), (7.2, 10.0, 0), (10.6, 13.0, 1), (13.5, 16.0, 0)]
    t = build_transcript(meta(), segments, duration_s=17, n_channels=1, model="base", speaker_turns=turns)
    assert [u.speaker for u in t.utterances] == ["system", "agent", "customer", "agent"]


def test_the_seeds_closing_questions_outweigh_an_announcement_in_the_customers_cluster():
    # 零八六号话务员为您服务 says nothing of recording and speaks first, in the customer's cluster; the
    # agent's 还有其他需要吗 (003/002 结束前语) tells whose cluster is whose
    segments = [seg(0, 0.3, 2.7, "零八六号话务员为您服务"), seg(0, 3.4, 7.6, "乐看视频，我是客服小秋，请问您遇到什么问题"),
                seg(0, 8.5, 13.7, "我买的是超级会员，现在想换成普通会员"), seg(0, 14.2, 20.0, "可以的，到期以后选普通会员就行"),
                seg(0, 20.5, 22.0, "好吧"), seg(0, 22.6, 24.8, "好的，还有其他需要吗"), seg(0, 25.3, 26.0, "没有了"),
                seg(0, 26.5, 28.5, "感谢您的来电，再见")]
    turns = [(0.3, 2.7, 1), (3.4, 7.6, 0), (8.5, 13.7, 1), (14.2, 20.0, 0), (20.5, 22.0, 1), (22.6, 24.8, 0),
             (25.3, 26.0, 1), (26.5, 28.5, 0)]
    t = build_transcript(meta(), segments, duration_s=29, n_channels=1, model="base", speaker_turns=turns)
    said = {u.text: u.speaker for u in t.utterances}
    assert [said[text] for text in ("乐看视频，我是客服小秋，请问您遇到什么问题", "可以的，到期以后选普通会员就行",
                                    "好的，还有其他需要吗", "感谢您的来电，再见")] == ["agent"] * 4
    assert said["我买的是超级会员，现在想换成普通会员"] == "customer"


def test_please_hold_said_a_clause_later_with_its_last_syllable_drawn_out_ends_the_announcement():
    # 请稍候 (Whisper: 请稍后) comes 0.32 s after the recording's 录音, its 候 lasting 0.7 s for ending it
    wait = RawSegment(1, 4.96, 6.16, "请稍后。", -0.3, 0.1, 1.2, (
        RawWord("请", 4.96, 5.22, 0.9), RawWord("稍", 5.22, 5.44, 0.9), RawWord("后。", 5.44, 6.16, 0.9)))
    segments = [seg(1, 0.4, 4.64, "你好，这里是医保服务热线，通话将被录音，"), wait,
                seg(1, 6.36, 10.0, "你好，医保服务热线，请问您要咨询什么？"), seg(0, 11.0, 14.0, "我想问一下住院报销")]
    t = build_transcript(meta(agent_channel=1), segments, duration_s=15, n_channels=2, model="base")
    assert [(u.speaker, u.text) for u in t.utterances][:2] == [
        ("system", "你好，这里是医保服务热线，通话将被录音，请稍后。"), ("agent", "你好，医保服务热线，请问您要咨询什么？")]


def test_an_announcement_cut_into_pieces_is_read_whole_with_its_garbled_last_words():
    # pause and speaker splits cut it in three; only the third says 录音; Whisper heard 请稍候 as 解消后
    segments = [seg(0, 0.4, 2.8, "您好，欢迎致电乐看视频"), seg(0, 2.8, 4.6, "为了提高服务质量"),
                seg(0, 4.6, 8.0, "您的通话可能会被录音，正在为您转接，解消后。", gaps=[(10, 0.4), (17, 0.4)]),
                seg(0, 9.0, 12.0, "乐看视频，我是客服小叶，请讲"), seg(0, 12.6, 15.0, "我想开一张发票")]
    turns = [(0.4, 8.0, 1), (9.0, 12.0, 0), (12.6, 15.0, 1)]
    t = build_transcript(meta(), segments, duration_s=16, n_channels=1, model="base", speaker_turns=turns)
    assert [(u.speaker, u.text) for u in t.utterances] == [
        ("system", "您好，欢迎致电乐看视频为了提高服务质量您的通话可能会被录音，正在为您转接，解消后。"),
        ("agent", "乐看视频，我是客服小叶，请讲"), ("customer", "我想开一张发票")]


def test_the_agent_saying_transfer_later_in_the_call_stays_the_agents():
    segments = [seg(1, 0.4, 4.0, "您好，乐看视频，请问有什么可以帮您"), seg(0, 4.5, 7.0, "我要退款"),
                seg(1, 7.5, 10.0, "我帮您转接到退款专席")]
    t = build_transcript(meta(agent_channel=1), segments, duration_s=12, n_channels=2, model="base")
    assert [u.speaker for u in t.utterances] == ["agent", "customer", "agent"]


CENTRE = """
extends: default
centre:
  prompts: [零八六号话务员为您服务]
"""


def test_a_centre_lists_an_announcement_that_says_nothing_of_recording(tmp_path):
    path = tmp_path / "centre.yaml"
    path.write_text(CENTRE, encoding="utf-8")
    rubric = load_rubric(path)
    assert rubric.centre.prompts == ("零八六号话务员为您服务",) and rubric.centre.companies == ()
    segments = [seg(1, 0.4, 2.5, "零八六号话务员为您服务"), seg(1, 3.1, 6.0, "您好，我是客服小邱，请问有什么可以帮您"),
                seg(0, 6.5, 8.0, "我想设置儿童模式")]
    plain = build_transcript(meta(agent_channel=1), segments, duration_s=10, n_channels=2, model="base")
    assert [u.speaker for u in plain.utterances] == ["agent", "agent", "customer"]
    listed = build_transcript(meta(agent_channel=1), segments, duration_s=10, n_channels=2, model="base",
                              centre_prompts=rubric.centre.prompts)
    assert [u.speaker for u in listed.utterances] == ["system", "agent", "customer"]


def test_an_empty_prompt_list_is_refused_with_its_line():
    with pytest.raises(RubricError) as e:
        parse_rubric("extends: default\ncentre:\n  prompts: []\n", "centre.yaml")
    assert str(e.value) == "centre.yaml:3: centre: prompts must be a non-empty list of announcement texts"


# --- real calls through `qa run` (Whisper, the speaker model) ---------------------------------------


PHONE = Path(__file__).resolve().parent / "data" / "phone"


@pytest.fixture(scope="module")
def phone_out(tmp_path_factory, transcript_cache) -> Path:
    """tests/data/phone, rendered by tools/tts_calls.py from bench/fixtures/phone/tests/*.json: a
    mono GSM call whose only 您好 is in the recorded announcement, and a mono AMR outbound call the
    customer picks up with 喂，哪位呀."""
    from typer.testing import CliRunner

    from cli import app

    out = tmp_path_factory.mktemp("phone-out")
    result = CliRunner().invoke(app, ["run", str(PHONE / "audio"), "--out", str(out), "--manifest",
                                      str(PHONE / "manifest.csv"), "--cache-dir", str(transcript_cache)])
    assert result.exit_code == 0, result.output
    return out


def _rows(out: Path, table: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(out / table).to_pylist()


@pytest.mark.slow
def test_a_greeting_only_the_announcement_says_fails_and_the_card_shows_the_system(phone_out):
    items = {r["item_id"]: r for r in _rows(phone_out, "scores/items") if r["call_id"] == "prompt_only_hello"}
    assert items["greeting"]["result"] == "fail"
    said = [r for r in _rows(phone_out, "transcripts") if r["call_id"] == "prompt_only_hello" and not r.get("dropped")]
    system = [r for r in said if r["speaker"] == "system"]
    assert system and system[0]["start"] < 1.0 and "录音" in "".join(r["text"] for r in system)
    first_agent = next(r for r in said if r["speaker"] == "agent")
    assert first_agent["start"] >= system[-1]["end"]
    card = (phone_out / "reports" / "calls" / "prompt_only_hello.html").read_text(encoding="utf-8")
    assert "系统提示音" in card


@pytest.mark.slow
def test_the_customer_who_picks_up_an_outbound_call_is_the_customer(phone_out):
    said = [r for r in _rows(phone_out, "transcripts") if r["call_id"] == "outbound_answer_first" and not r.get("dropped")]
    assert said[0]["speaker"] == "customer" and said[0]["start"] < 1.0
    labels = json.loads((PHONE / "labels.json").read_text(encoding="utf-8"))["outbound_answer_first"]
    # most of the agent's reference speech lies under agent utterances
    agent_s = sum(max(0.0, min(r["end"], t["end"]) - max(r["start"], t["start"]))
                  for t in labels["turns"] if t["speaker"] == "agent" for r in said if r["speaker"] == "agent")
    total = sum(t["end"] - t["start"] for t in labels["turns"] if t["speaker"] == "agent")
    assert agent_s / total > 0.8
    items = {r["item_id"]: r for r in _rows(phone_out, "scores/items") if r["call_id"] == "outbound_answer_first"}
    assert items["greeting"]["result"] == "pass"
