"""Call scripts for the mood model's TTS calls (tools/tts_calls.py schema), each customer turn labelled.

    from mood_dialogues import build_scripts
    scripts = build_scripts(pool, prefix="mt", n_calls=16, seed=5100)

A call opens with two calm customer turns (the caller's baseline), then three middle turns, each one
of four kinds drawn from the call's seed: `calm` (plain words, plain voice), `words` (frustrated
words, plain voice), `voice` (plain words in an agitated voice: higher, louder, faster) or `both`;
then the agent apologises and the customer leaves calmer or still upset. Every customer turn carries
`mood` (its kind); a turn is frustrated unless its kind is `calm`. Plain turns get a little random
prosody too, so a voice feature has to see more than any change at all.
"""

from __future__ import annotations

import random
from typing import Any

FORMATS = ("stereo_8k_ulaw_wav", "stereo_16k_flac", "mono_16k_mp3", "mono_8k_wav")
KINDS = ("calm", "words", "voice", "both")
KIND_WEIGHTS = (0.4, 0.2, 0.2, 0.2)
AGENT_MIDDLE = ("我这边看到记录了，正在处理中。", "您先别着急，我帮您再确认一下。", "这个情况我需要跟相关部门核实一下。",
                "按照流程需要先登记，再安排处理。", "好的，我记下来了。", "我理解您的心情，我们会尽快处理。")


def agitated(rng: random.Random) -> dict[str, float]:
    return {"f0": round(rng.uniform(1.12, 1.3), 3), "gain_db": round(rng.uniform(3.0, 7.0), 1),
            "speed": round(rng.uniform(0.82, 0.92), 3)}


def plain(rng: random.Random) -> dict[str, float]:
    return {"f0": round(rng.uniform(0.96, 1.04), 3), "gain_db": round(rng.uniform(-1.0, 1.0), 1),
            "speed": round(rng.uniform(0.97, 1.05), 3)}


def customer(text: str, kind: str, rng: random.Random, *, overlap: float | None = None) -> dict[str, Any]:
    turn: dict[str, Any] = {"spk": "customer", "text": text, "mood": kind,
                            "prosody": agitated(rng) if kind in ("voice", "both") else plain(rng)}
    if kind in ("words", "both"):
        turn["complaint"] = True
    if overlap:
        turn["overlap"] = overlap
    return turn


def build_script(scenario: dict, call_id: str, seed: int, fmt: str, day: int) -> dict[str, Any]:
    rng = random.Random(seed)
    low_voice = rng.random() < 0.5
    voices = {"agent": {"speed": 1.0, "f0": round(rng.uniform(0.95, 1.1), 3), "formant": 1.0},
              "customer": ({"speed": 1.0, "f0": round(rng.uniform(0.55, 0.65), 3), "formant": 0.87} if low_voice
                           else {"speed": 1.0, "f0": round(rng.uniform(0.9, 1.2), 3), "formant": 1.05})}
    job = rng.randrange(100, 999)
    turns: list[dict[str, Any]] = [
        {"spk": "agent", "text": f"您好，{scenario['company']}客服，工号{job}为您服务，请问有什么可以帮您？"},
        customer(rng.choice(scenario["request"]), "calm", rng),
        {"spk": "agent", "text": "好的，麻烦您提供一下相关信息。"},
        customer(rng.choice(scenario["details"]), "calm", rng),
        {"spk": "agent", "text": "好的，我帮您查一下。"},
    ]
    frustrated = rng.sample(scenario["frustrated"], len(scenario["frustrated"]))
    neutral = rng.sample(scenario["neutral"], len(scenario["neutral"]))
    agent_lines = rng.sample(AGENT_MIDDLE, len(AGENT_MIDDLE))
    for k in range(3):
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        text = frustrated.pop() if kind in ("words", "both") else neutral.pop()
        over = round(rng.uniform(0.6, 1.0), 2) if kind in ("voice", "both") and rng.random() < 0.3 else None
        turns.append(customer(text, kind, rng, overlap=over))
        turns.append({"spk": "agent", "text": agent_lines[k]})
    turns[-1] = {"spk": "agent", "text": "非常抱歉给您带来不便，我马上为您加急处理，今天之内给您回复。"}
    if rng.random() < 0.7:
        turns.append(customer(rng.choice(scenario["calm_end"]), "calm", rng))
    else:
        turns.append(customer(scenario["upset_end"][0], rng.choice(("words", "both")), rng))
    turns.append({"spk": "agent", "text": "请问还有其他可以帮您的吗？"})
    turns.append(customer("没有了，再见。", "calm", rng))
    turns.append({"spk": "agent", "text": "感谢您的来电，再见。"})
    return {
        "call_id": call_id, "scenario": "客户情绪", "company": scenario["company"], "direction": "inbound",
        "agent": {"id": f"M{job}", "name": f"坐席{job}", "short_name": f"{job}号", "team": "情绪测试组"},
        "started_at": f"2025-06-{day:02d}T10:00:00+08:00", "format": fmt, "agent_channel": 0,
        "hangup_by": "customer", "seed": seed, "voices": voices,
        "levels_db": {"agent": -20, "customer": round(rng.uniform(-25.0, -21.0), 1)}, "noise_dbfs": -50,
        "turns": turns,
    }


def build_scripts(pool: dict, prefix: str, n_calls: int, seed: int) -> list[dict[str, Any]]:
    scenarios = pool["scenarios"]
    return [build_script(scenarios[k % len(scenarios)], f"{prefix}_{k + 1:02d}", seed + k, FORMATS[k % len(FORMATS)],
                         1 + k % 28) for k in range(n_calls)]


def turn_labels(script: dict) -> list[dict[str, Any]]:
    """The spoken turns in order (as labels.json lists them), with `mood` on the customer's."""
    return [t for t in script["turns"] if "spk" in t]
