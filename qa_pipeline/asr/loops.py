"""Stretches where the batched greedy decode looped, decoded again the careful way.

The guards drop a loop, but the speech under it is lost with it: a digit string that turned into
"9-1-1-1-…" for 12 s swallowed the next two turns; over a hold with babble one phrase repeated as
26 segments ran on over the agent's return. Those stretches are decoded again alone (beam 5,
temperature fallback); where the new text is no loop, it replaces what the loop covered.
"""

from __future__ import annotations

import logging
from typing import Protocol, Sequence

import numpy as np

from qa_pipeline.asr.guards import GuardOptions, RepeatOptions, is_loop, repeated_runs
from qa_pipeline.records import RawSegment

logger = logging.getLogger("qa_pipeline")

PAD_S = 0.3  # audio kept either side of a looped stretch


class Redecoder(Protocol):
    def redecode(self, channel: int, samples: np.ndarray, start: float, end: float) -> list[RawSegment]: ...


def loop_spans(segments: Sequence[RawSegment], guard: GuardOptions = GuardOptions(),
               repeat: RepeatOptions = RepeatOptions()) -> list[tuple[int, float, float]]:
    """(channel, start, end) of every looped stretch, overlapping ones merged: a segment that
    loops inside itself, or a run of segments repeating one phrase back to back."""
    spans = [(s.channel, s.start, s.end) for s in segments if is_loop(s, guard)]
    by_channel: dict[int, list[RawSegment]] = {}
    for segment in segments:
        by_channel.setdefault(segment.channel, []).append(segment)
    for channel, mine in by_channel.items():
        mine.sort(key=lambda s: (s.start, s.end))
        for run in repeated_runs([(s.start, s.end, s.text) for s in mine], repeat):
            spans.append((channel, mine[run[0]].start, max(mine[i].end for i in run)))
    merged: list[tuple[int, float, float]] = []
    for channel, start, end in sorted(spans):
        if merged and merged[-1][0] == channel and start <= merged[-1][2]:
            merged[-1] = (channel, merged[-1][1], max(end, merged[-1][2]))
        else:
            merged.append((channel, start, end))
    return merged


def redecode_loops(model: Redecoder, channels: Sequence[np.ndarray], segments: Sequence[RawSegment],
                   sample_rate: int = 16000) -> list[RawSegment]:
    """`segments` with every looped stretch decoded again; a stretch whose new decode still loops
    (or holds nothing) keeps what it had, for the guards to drop."""
    out = list(segments)
    for channel, start, end in loop_spans(segments):
        duration = len(channels[channel]) / sample_rate
        a, b = max(0.0, start - PAD_S), min(duration, end + PAD_S)
        new = model.redecode(channel, channels[channel], a, b)
        if not new or loop_spans(new):
            logger.debug("channel %d %.1f-%.1f s: decoded again, still a loop; kept for the guards", channel, start, end)
            continue
        logger.debug("channel %d %.1f-%.1f s: loop decoded again: %s", channel, start, end, "".join(s.text for s in new))
        out = [s for s in out if not (s.channel == channel and start <= (s.start + s.end) / 2 <= end)] + new
    return sorted(out, key=lambda s: (s.start, s.channel))
