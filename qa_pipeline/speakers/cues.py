"""What an agent says and a customer does not: how stereo channels and mono clusters get their roles."""

from __future__ import annotations

from qa_pipeline.scoring.matching import match_cue

# What an agent says and a customer does not; 您好 counts in the opening only (customers answer
# 你好). 我是 is not a cue: customers say 对，我是. One list for stereo channels and mono clusters.
AGENT_CUES = ("工号", "客服", "热线", "有什么可以帮", "很高兴为您服务", "还有什么可以帮", "感谢您的来电",
              "请您稍等", "让您久等", "跟您确认", "给您确认", "为您")
OPENING_CUES = ("您好",)
OPENING_S = 20.0


def agent_cues(text: str, start: float) -> int:
    """How many agent cues a stretch of speech starting at `start` s carries: characters, or the
    same toneless syllables within a unit edit (Whisper's 公号 and 克服 still count; no meaning
    variants, no confusion costs: matching.match_cue)."""
    cues = AGENT_CUES + (OPENING_CUES if start < OPENING_S else ())
    return sum(match_cue(text, cue) for cue in cues)
