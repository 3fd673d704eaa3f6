"""Who spoke: turn raw channel segments into utterances with a role (agent / customer)."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from difflib import SequenceMatcher
from statistics import median
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from qa_pipeline.asr.guards import GuardOptions, check_segment, repeated_runs, trim_loop
from qa_pipeline.asr.transcribe import join_pieces, split_on_pauses
from qa_pipeline.records import (AGENT, CUSTOMER, SYSTEM, UNKNOWN, AudioEvent, CallMeta, CallTranscript, RawSegment, RawWord,
                                 Utterance, Word)
from qa_pipeline.scoring.matching import match_cue
from qa_pipeline.scoring.normalize import normalize_text, to_pinyin, to_simplified
from qa_pipeline.audio.stream import blocks, chunks_of
from qa_pipeline.speakers.cues import choose_agent
from qa_pipeline.speakers.diarize import split_by_speaker
from qa_pipeline.speakers.echo import echo_paths, is_echo
from qa_pipeline.speakers.prompts import CLAUSE_GAP_S, CLOSING_CUES, JOIN_GAP_S, OPENING_S, part_of, split_prompt

logger = logging.getLogger("qa_pipeline")

def agent_channel(segments: Sequence[RawSegment], meta: CallMeta, n_channels: int) -> tuple[int | None, str | None]:
    """The channel the agent speaks on and how that was decided: manifest; content (the scored
    evidence of cues.choose_agent: formulae, requests, who answers); default (channel 0, when
    neither channel says anything that tells)."""
    if n_channels < 2:
        return None, None
    if meta.agent_channel is not None:
        return meta.agent_channel, "manifest"
    lanes: dict[int, list[tuple[float, str]]] = {channel: [] for channel in range(n_channels)}
    for segment in segments:
        lanes.setdefault(segment.channel, []).append((segment.start, to_simplified(segment.text)))
    choice = choose_agent(lanes, meta.direction)
    logger.debug("%s: agent channel evidence: %s", meta.call_id, choice.describe())
    if choice.agent is None or not choice.decided:
        return 0, "default"
    return choice.agent, "content"


def _pieces(segments: Sequence[RawSegment], split_gap_s: float) -> list[RawSegment]:
    """Split each segment at long pauses, then give stray one- or two-character pieces back to
    the sentence they belong to. Whisper's word alignment often pins a segment's first word to the
    segment's start, seconds before the rest (你 … 4 s … 没听明白), or leaves the first word of
    the next sentence at the end of the previous segment."""
    out: list[RawSegment] = []
    by_channel: dict[int, list[RawSegment]] = {}
    for segment in sorted(segments, key=lambda s: (s.channel, s.start)):
        by_channel.setdefault(segment.channel, []).append(segment)
    for channel_segments in by_channel.values():
        pieces = [piece for segment in channel_segments for piece in split_on_pauses(segment, split_gap_s)]
        merged: list[RawSegment] = []
        for index, piece in enumerate(pieces):
            following = pieces[index + 1] if index + 1 < len(pieces) else None
            if (
                following is not None
                and _is_stray(piece)
                and following.start - piece.end <= MAX_STRAY_GAP_S
                and not _is_stray(following)
            ):
                pieces[index + 1] = join_pieces(_moved_before(piece, following.start), following)
                continue
            merged.append(piece)
        out.extend(merged)
    return out


MAX_STRAY_GAP_S = 5.0


def _is_stray(piece: RawSegment) -> bool:
    return len(_compact(piece.text)) <= 2 and len(piece.words) <= 2 and piece.text.strip()[-1:] not in "。.？?！!"


def _moved_before(piece: RawSegment, start: float) -> RawSegment:
    """The piece re-timed to end where `start` is, keeping the length of each word."""
    shift = start - piece.end
    words = tuple(RawWord(w.text, w.start + shift, w.end + shift, w.prob) for w in piece.words)
    return RawSegment(piece.channel, piece.start + shift, start, piece.text, piece.avg_logprob,
                      piece.no_speech_prob, piece.compression_ratio, words)


def _compact(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


# --- channel bleed (stereo) ---------------------------------------------------------------------
#
# A line with crosstalk or echo carries a faint copy of the other side on each channel; Whisper
# transcribes the copy too, and the utterance would appear twice. The decoded audio is gone by the
# time transcripts are built (the cache keeps only what Whisper said), so the cache keeps a compact
# loudness envelope per channel as well: one integer dBFS per 50 ms frame (channel_levels). A
# segment is bleed when, over its words, the other channel is more than BLEED_DB louder in most
# frames AND the other channel says the same thing at the same time; a loud segment that overlaps
# the other side (talk-over) is never dropped, and neither is a quiet one that says something else.

LEVEL_FRAME_S = 0.05
LEVEL_FLOOR_DB = -100
BLEED_DB = 10.0  # the other channel this much louder …
BLEED_SHARE = 0.6  # … in at least this share of the segment's audible frames …
BLEED_SAME_TEXT = 0.5  # … and at least this share of its characters said there at the same time
AUDIBLE_DB = -50  # frames where neither channel reaches this are not compared
BLEED_SLACK_S = 0.5  # timing slack between a segment and its louder copy

Levels = tuple[tuple[int, ...], ...]  # per channel, dBFS per LEVEL_FRAME_S frame


def channel_levels(channels: Sequence[np.ndarray], sample_rate: int) -> Levels:
    """Each channel's RMS level in whole dBFS per 50 ms frame (the last frame zero-padded),
    clipped to [-100, 0]: about 40 bytes of JSON per second of stereo audio."""
    return tuple(level_profile(chunks_of(samples), sample_rate) for samples in channels)


def level_profile(chunks: Iterable[np.ndarray], sample_rate: int) -> tuple[int, ...]:
    """One channel's levels (see :func:`channel_levels`) from a stream of chunks, a few thousand
    frames in memory at a time."""
    frame = max(1, int(round(LEVEL_FRAME_S * sample_rate)))
    db: list[np.ndarray] = []
    tail = np.zeros(0, np.float64)
    for block in blocks(chunks, frame * 4096):
        whole = len(block) // frame * frame
        if whole:
            db.append(_frame_db(np.asarray(block[:whole], dtype=np.float64).reshape(-1, frame)))
        tail = np.asarray(block[whole:], dtype=np.float64)
    if len(tail):
        db.append(_frame_db(np.pad(tail, (0, frame - len(tail))).reshape(1, frame)))
    return tuple(int(v) for part in db for v in part)


def _frame_db(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(x * x, axis=1))
    return np.clip(np.round(20 * np.log10(np.maximum(rms, 1e-6))), LEVEL_FLOOR_DB, 0)


def _frames(piece: RawSegment) -> list[int]:
    """The level frames the piece's words cover (its whole span when it has no words)."""
    spans = [(w.start, w.end) for w in piece.words] or [(piece.start, piece.end)]
    return sorted({f for start, end in spans for f in _span_frames(start, end)})


def _span_frames(start: float, end: float) -> range:
    first = int(math.floor(start / LEVEL_FRAME_S))
    return range(max(first, 0), max(first + 1, int(math.ceil(end / LEVEL_FRAME_S))))


def _same_words(text: str, other: str) -> float:
    """The share of `text`'s normalised characters that `other` also says, in order; compared on
    toneless pinyin too, as a faint copy is often heard as homophones."""
    a, b = normalize_text(text), normalize_text(other)
    if not a or not b:
        return 0.0

    def share(x, y) -> float:
        matcher = SequenceMatcher(None, x, y, autojunk=False)
        return sum(block.size for block in matcher.get_matching_blocks()) / len(x)

    return max(share(a, b), share(to_pinyin(a), to_pinyin(b)))


def bleed_below_db(piece: RawSegment, text: str, others: Sequence[tuple[RawSegment, str]], levels: Levels) -> float | None:
    """How many dB the piece lies below the other channel (the median over its audible frames)
    when it is a faint copy of what the other channel says at the same time; None when it is not."""
    channel = piece.channel
    if not 0 <= channel < len(levels) or len(levels) != 2:
        return None
    other = 1 - channel
    said = [t for s, t in others if s.channel == other
            and s.start < piece.end + BLEED_SLACK_S and s.end > piece.start - BLEED_SLACK_S]
    if not said or _same_words(text, "".join(said)) < BLEED_SAME_TEXT:
        return None
    diffs = _under_other_db(_frames(piece), channel, levels)
    return float(median(diffs)) if _mostly_under(diffs) else None


def _under_other_db(frames: Iterable[int], channel: int, levels: Levels) -> list[float]:
    """How many dB the other channel is louder than `channel` in each of the frames either reaches AUDIBLE_DB."""
    own, other = levels[channel], levels[1 - channel]
    return [other[f] - own[f] for f in frames if f < len(own) and f < len(other) and max(own[f], other[f]) >= AUDIBLE_DB]


def _mostly_under(diffs: Sequence[float]) -> bool:
    """BLEED_SHARE of the frames or more BLEED_DB under the other channel."""
    return bool(diffs) and sum(d > BLEED_DB for d in diffs) >= BLEED_SHARE * len(diffs)


def _without_echo(
    kept: list[tuple[RawSegment, str]], levels: Levels
) -> tuple[list[tuple[RawSegment, str]], list[tuple[RawSegment, str, str]]]:
    """Kept pieces that are not the line echo of the other channel (speakers.echo), and those that are, with why."""
    paths = echo_paths(levels)
    if not paths:
        return kept, []
    out: list[tuple[RawSegment, str]] = []
    echoed: list[tuple[RawSegment, str, str]] = []
    for piece, text in kept:
        path = paths.get(piece.channel)
        if path is not None and is_echo(_frames(piece), levels, path):
            echoed.append((piece, text, path.describe()))
        else:
            out.append((piece, text))
    return out, echoed


def _without_bleed(
    kept: list[tuple[RawSegment, str]], levels: Levels
) -> tuple[list[tuple[RawSegment, str]], list[tuple[RawSegment, str, str]]]:
    """Kept pieces that are not faint copies of the other channel, and those that are, with why; a
    piece that runs on into a faint copy (没了 | 好的，再见 heard on the caller's line) keeps its own words."""
    out: list[tuple[RawSegment, str]] = []
    bled: list[tuple[RawSegment, str, str]] = []
    for piece, text in kept:
        below = bleed_below_db(piece, text, kept, levels)
        if below is not None:
            bled.append((piece, text, f"channel bleed ({below:.0f} dB below the other channel)"))
            continue
        words = piece.words
        first, last = 0, len(words)  # the words the piece keeps once its faint ends are cut off
        for a, b in _faint_ends(piece, levels):
            part = part_of(piece, words[a:b])
            part_text = to_simplified(part.text)
            below = bleed_below_db(part, part_text, kept, levels)
            if below is not None:
                bled.append((part, part_text, f"channel bleed ({below:.0f} dB below the other channel)"))
                first, last = (b, last) if a == 0 else (first, a)
        if (first, last) != (0, len(words)):
            piece = part_of(piece, words[first:last])
            text = to_simplified(piece.text)
        out.append((piece, text))
    return out, bled


FAINT_RUN = 2  # words at least, at a piece's start or end, for a faint copy inside it to be cut out


def _faint_ends(piece: RawSegment, levels: Levels) -> list[tuple[int, int]]:
    """The word ranges [a, b) of the piece's leading and trailing runs of at least FAINT_RUN words
    that lie BLEED_DB or more under the other channel, where the rest of the piece does not."""
    words = piece.words
    if len(words) < FAINT_RUN + 1 or len(levels) != 2 or not 0 <= piece.channel < 2:
        return []
    faint = [_mostly_under(_under_other_db(_span_frames(w.start, w.end), piece.channel, levels)) for w in words]
    lead = next((i for i, f in enumerate(faint) if not f), len(words))
    if lead == len(words):
        return []  # all of it faint: the piece as a whole was judged above
    trail = next(i for i, f in enumerate(reversed(faint)) if not f)
    return ([(0, lead)] if lead >= FAINT_RUN else []) + ([(len(words) - trail, len(words))] if trail >= FAINT_RUN else [])




# --- noise transcribed as words (stereo) ------------------------------------------------------
#
# On a channel with steady noise (a noisy line, babble behind the caller) Whisper writes words over
# the noise, most of all while the other side talks or during a hold. Speech stands out of its
# channel's noise floor by its syllables' peaks; noise does not. A piece is noise when, around its
# words, the channel's louder frames stay within NOISE_PEAK_DB of the channel's noise floor AND
# Whisper was unsure of its words. A clean channel's floor is its line silence, tens of dB below
# any speech, so the guard only ever acts on noisy channels.

NOISE_FLOOR_PERCENTILE = 10  # the channel's noise floor: this percentile of its frame levels over the call
NOISE_PEAK_PERCENTILE = 90  # a piece's peak: this percentile of its frames' levels …
NOISE_PEAK_DB = 8.0  # … within this many dB of the floor is noise-like …
NOISE_MAX_WORD_PROB = 0.7  # … when its words' mean probability is below this
NOISE_SLACK_S = 0.5  # frames this far either side of each word count too (word times are loose)
NOISE_MIN_CHARS = 3  # shorter pieces (对 / 好 / 嗯行: answers a noisy line barely lifts) are never judged


class ChannelNoise(NamedTuple):
    """One channel's frame levels (dB) and its noise floor."""

    levels: np.ndarray
    floor: float


def channel_noise(levels: Levels) -> list[ChannelNoise | None]:
    """Each channel's levels and noise floor (None: no levels for it), measured once per call."""
    out: list[ChannelNoise | None] = []
    for channel in levels:
        own = np.asarray(channel, dtype=np.float64)
        out.append(ChannelNoise(own, float(np.percentile(own, NOISE_FLOOR_PERCENTILE))) if len(own) else None)
    return out


def noise_like(piece: RawSegment, noise: Sequence[ChannelNoise | None],
               channel: int | None = None) -> tuple[float, float] | None:
    """(peak dB above the channel's noise floor, mean word probability) when the piece is words
    Whisper wrote over noise: no frame around its words stands out of the floor, and its words are
    unsure; None when it is not (or cannot be told: no words, no levels for its channel). `channel`:
    the audio channel when the piece's own holds something else (a mono call's speaker lane)."""
    channel = piece.channel if channel is None else channel
    if not piece.words or not 0 <= channel < len(noise) or noise[channel] is None:
        return None
    if len(_compact(piece.text)) < NOISE_MIN_CHARS:
        return None
    prob = _word_prob(piece)
    if prob >= NOISE_MAX_WORD_PROB:
        return None
    own, floor = noise[channel]
    slack = replace(piece, words=tuple(RawWord(w.text, max(0.0, w.start - NOISE_SLACK_S), w.end + NOISE_SLACK_S, w.prob)
                                        for w in piece.words))
    frames = [f for f in _frames(slack) if f < len(own)]
    if not frames:
        return None
    peak = float(np.percentile(own[frames], NOISE_PEAK_PERCENTILE) - floor)
    return (peak, prob) if peak < NOISE_PEAK_DB else None


def _without_noise(
    kept: list[tuple[RawSegment, str]], levels: Levels, channel: int | None = None
) -> tuple[list[tuple[RawSegment, str]], list[tuple[RawSegment, str, str]]]:
    """Kept pieces that stand out of their channel's noise, and those written over noise, with why.
    `channel`: the one audio channel of them all (a mono call's pieces carry their speaker lane instead)."""
    noise_of = channel_noise(levels)
    out: list[tuple[RawSegment, str]] = []
    noise: list[tuple[RawSegment, str, str]] = []
    for piece, text in kept:
        found = noise_like(piece, noise_of, channel)
        if found is None:
            out.append((piece, text))
        else:
            peak, prob = found
            noise.append((piece, text, f"noise-like audio ({max(peak, 0.0):.0f} dB above the channel's noise floor, "
                                       f"word probability {prob:.2f})"))
    return out, noise


OVER_OTHER_SHARE = 0.8  # a stereo piece this much inside the other channel's speech…
OVER_OTHER_PROB = 0.6  # …whose words Whisper averages below this probability is not speech of its own


def _without_words_over_the_other_side(
    kept: list[tuple[RawSegment, str]]
) -> tuple[list[tuple[RawSegment, str]], list[tuple[RawSegment, str, str]]]:
    """Stereo: pieces Whisper was unsure of, said mostly while the other channel speaks, are dropped.
    Babble or a TV behind the caller reaches Whisper as speech it half hears; it writes it down most
    of all while the agent talks, when the caller is silent. The least sure piece goes first, and the
    others are measured against what is left, so a real piece is never dropped for overlapping a
    hallucination. Talk-over by the caller is heard clearly (over sixteen corpora: 27 such pieces
    were not the caller's speech, none was; at 60% and 0.6, 31 and one of the caller's lost)."""
    out = list(kept)
    dropped: list[tuple[RawSegment, str, str]] = []
    probs = [(_word_prob(piece), piece, text) for piece, text in kept]
    unsure = sorted((pick for pick in probs if pick[0] < OVER_OTHER_PROB), key=lambda pick: (pick[0], pick[1].start))
    for prob, piece, text in unsure:
        length = piece.end - piece.start
        inside = sum(max(0.0, min(piece.end, o.end) - max(piece.start, o.start)) for o, _t in out if o.channel != piece.channel)
        if length > 0 and inside >= OVER_OTHER_SHARE * length:
            out.remove((piece, text))
            dropped.append((piece, text, f"unsure words over the other channel's speech ({inside / length:.0%} "
                                         f"of it, word probability {prob:.2f})"))
    return out, sorted(dropped, key=lambda d: (d[0].start, d[0].channel))


def _word_prob(piece: RawSegment) -> float:
    """Whisper's mean word probability over the piece (1.0 for a piece without words)."""
    return sum(w.prob for w in piece.words) / len(piece.words) if piece.words else 1.0


def _repeats(segments: Sequence[RawSegment]) -> dict[int, str]:
    """Why each segment that belongs to a run of one phrase repeated back to back on its audio
    channel is dropped, by index. Looked at on Whisper's own segments, before pause and speaker
    splits cut the copies apart."""
    by_channel: dict[int, list[int]] = {}
    for index, segment in enumerate(segments):
        by_channel.setdefault(segment.channel, []).append(index)
    reasons: dict[int, str] = {}
    for indexes in by_channel.values():
        indexes.sort(key=lambda i: (segments[i].start, segments[i].end))
        texts = [to_simplified(segments[i].text) for i in indexes]
        for run in repeated_runs([(segments[i].start, segments[i].end, t) for i, t in zip(indexes, texts)]):
            first = segments[indexes[run[0]]]
            for r in run:
                reasons[indexes[r]] = f"repeated across segments ({len(run)}x {texts[run[0]]!r} from {first.start:.1f} s)"
    return reasons


def _take_prompts(
    kept: list[tuple[RawSegment, str]], agent_lane: int | None, centre_prompts: Sequence[str]
) -> tuple[list[tuple[RawSegment, str]], list[tuple[RawSegment, str]]]:
    """(kept pieces without the recorded announcement that opens the call, the announcement). The
    opening block is the first pieces of `agent_lane` (any lane when None: a mono call before its
    roles are chosen) in the first OPENING_S seconds, each following the last within JOIN_GAP_S
    (pause and speaker splits cut an announcement into several); pieces of two characters or fewer
    before it (喂, 嗯) are passed over. When speakers.prompts takes the block for a prompt, it is cut
    after the prompt's sentence: the words before the cut are the announcement, those after it stay
    with their pieces."""
    ordered = sorted(kept, key=lambda pair: (pair[0].start, pair[0].channel))
    block: list[tuple[RawSegment, str]] = []
    for piece, text in ordered:
        if piece.start >= OPENING_S:
            break
        if agent_lane is not None and piece.channel != agent_lane:
            continue
        if not block and len(_compact(text)) <= 2:
            continue
        gap = piece.start - block[-1][0].end if block else 0.0
        if gap > JOIN_GAP_S and not (gap <= CLAUSE_GAP_S and any(match_cue(text, c) for c in CLOSING_CUES)):
            break  # …but an announcement's closing words (请稍候) may come a clause's pause later
        block.append((piece, text))
    if not block:
        return kept, []
    joined = block[0][0]
    for piece, _text in block[1:]:
        joined = join_pieces(joined, piece)
    prompt, _rest = split_prompt(joined, to_simplified, centre_prompts)
    if prompt is None:
        return kept, []
    in_block = {id(piece) for piece, _text in block}
    out = [pair for pair in ordered if id(pair[0]) not in in_block]
    for piece, _text in block:
        after = tuple(w for w in piece.words if w.start >= prompt.end)
        if piece.start >= prompt.end or not piece.words:
            if piece.start >= prompt.end:
                out.append((piece, to_simplified(piece.text)))
        elif after:
            rest = part_of(piece, after)
            out.append((rest, to_simplified(rest.text)))
    out.sort(key=lambda pair: (pair[0].start, pair[0].channel))
    return out, [(prompt, to_simplified(prompt.text))]


def _lanes(kept: Sequence[tuple[RawSegment, str]]) -> dict[int, list[tuple[float, str]]]:
    lanes: dict[int, list[tuple[float, str]]] = {}
    for piece, text in kept:
        lanes.setdefault(piece.channel, []).append((piece.start, text))
    return lanes


SLIVER_S = 1.0  # a mono piece this short…
SLIVER_GAP_S = 0.3  # …between two pieces of the other cluster, this close on both sides, is theirs
CARRY_ON_S = 1.2  # a mono piece this short…
CARRY_ON_GAP_S = 0.1  # …this soon after the other cluster's unfinished sentence carries it on
SENTENCE_GOES_ON = tuple("。？！?!.，,")  # a piece ending in none of these stops mid-sentence


def _without_slivers(kept: Sequence[tuple[RawSegment, str]]) -> list[tuple[RawSegment, str]]:
    """Mono (lanes = clusters, in time order): short pieces given to the voice they belong with.

    A piece of at most SLIVER_S between two pieces of the other cluster, within SLIVER_GAP_S of each,
    goes to that cluster: nobody takes the floor for a second and hands it straight back (over the
    mono calls of sixteen corpora: 31 such pieces were the neighbours' speech, 3 their own). Then a
    piece of at most CARRY_ON_S that starts within CARRY_ON_GAP_S of the other cluster's piece, where
    that piece stops mid-sentence (no punctuation at its end), carries that sentence on (73 and 18).
    The clusters flicker where two voices are alike for a word or two: 您还有 | 别的需要吗."""
    out = list(kept)
    for i in range(1, len(out) - 1):
        (before, _), (piece, text), (after, _) = out[i - 1], out[i], out[i + 1]
        if (before.channel == after.channel != piece.channel and piece.end - piece.start <= SLIVER_S
                and piece.start - before.end <= SLIVER_GAP_S and after.start - piece.end <= SLIVER_GAP_S):
            out[i] = (replace(piece, channel=before.channel), text)
    for i in range(1, len(out)):
        (before, said), (piece, text) = out[i - 1], out[i]
        if (before.channel != piece.channel and piece.end - piece.start <= CARRY_ON_S
                and 0.0 <= piece.start - before.end <= CARRY_ON_GAP_S and not said.rstrip().endswith(SENTENCE_GOES_ON)):
            out[i] = (replace(piece, channel=before.channel), text)
    return out


def build_transcript(
    meta: CallMeta,
    segments: Sequence[RawSegment],
    *,
    duration_s: float,
    n_channels: int,
    model: str,
    events: Sequence[AudioEvent] = (),
    split_gap_s: float = 1.0,
    guard_options: GuardOptions = GuardOptions(),
    speaker_turns: Sequence[tuple[float, float, int]] | None = None,
    levels: Levels | None = None,
    centre_prompts: Sequence[str] = (),
) -> CallTranscript:
    """Assemble one call's transcript: split on pauses, simplify, guard, label roles, number in time order.

    Stereo: one role per channel. Mono with `speaker_turns` (diarization clusters): segments are
    split where the cluster changes and each cluster is a lane of its own, the agent's being the
    one that says the agent's lines; mono without them: one 'unknown' speaker. Stereo with
    `levels` (channel_levels of the audio): faint copies of the other channel are dropped as
    channel bleed, and unsure words that do not stand out of their channel's noise floor as
    noise-like audio. Recorded announcements in the agent's opening (speakers.prompts; also the
    centre's own `centre_prompts` texts) get the speaker `system`."""
    reasons = _repeats(segments)
    repeats = [(segment, reasons[i]) for i, segment in enumerate(segments) if i in reasons]
    segments = [segment for i, segment in enumerate(segments) if i not in reasons]
    # A loop whose copies Whisper spread over pauses is cut off here, before the pause split
    # leaves one copy per piece (the pieces are checked again below).
    untrimmed, segments = segments, []
    for segment in untrimmed:
        head, loop = trim_loop(segment, guard_options)
        if loop is not None:
            repeats.append((loop, "repetition loop"))
        if head is not None:
            segments.append(head)
    diarized = n_channels == 1 and bool(speaker_turns)
    if diarized:
        by_speaker = split_by_speaker(segments, speaker_turns)
        # Until the utterances are made, a segment's `channel` holds its lane: here the cluster.
        segments = [replace(p.segment, channel=p.cluster) for p in by_speaker]
        repeats = [(replace(p.segment, channel=p.cluster), reason) for segment, reason in repeats
                   for p in split_by_speaker([segment], speaker_turns)]
    kept: list[tuple[RawSegment, str]] = []
    dropped: list[tuple[RawSegment, str, str]] = [(segment, to_simplified(segment.text), reason) for segment, reason in repeats]
    for segment, text, reason in dropped:
        logger.debug("%s: dropped %.1f-%.1f %r: %s", meta.call_id, segment.start, segment.end, text, reason)
    for piece in _pieces(segments, split_gap_s):
        piece, loop = trim_loop(piece, guard_options)
        if loop is not None:
            dropped.append((loop, to_simplified(loop.text), "repetition loop"))
        if piece is None:
            continue
        text = to_simplified(piece.text)
        reason = check_segment(piece, text, guard_options)
        if reason is None:
            kept.append((piece, text))
        else:
            logger.debug("%s: dropped %.1f-%.1f %r: %s", meta.call_id, piece.start, piece.end, text, reason)
            dropped.append((piece, text, reason))
    by_level: list[tuple[RawSegment, str, str]] = []
    if n_channels == 2 and levels is not None and not speaker_turns:
        kept, bled = _without_bleed(kept, levels)
        kept, echoed = _without_echo(kept, levels)
        kept, noise = _without_noise(kept, levels)
        by_level = bled + echoed + noise
    elif n_channels == 1 and levels is not None and len(levels) == 1:
        # mono: words written over the line's noise (babble during a silent hold), against the one channel
        kept, by_level = _without_noise(kept, levels, channel=0)
    if n_channels == 2 and not speaker_turns:
        kept, over = _without_words_over_the_other_side(kept)
        by_level += over
    for piece, text, reason in by_level:
        logger.debug("%s: dropped %.1f-%.1f %r: %s", meta.call_id, piece.start, piece.end, text, reason)
    dropped.extend(by_level)
    kept.sort(key=lambda pair: (pair[0].start, pair[0].channel))
    # Roles are decided on what the guards kept: a hallucinated 您好 or 感谢您的来电 says nothing.
    if diarized:
        kept, prompts = _take_prompts(kept, None, centre_prompts)
        kept = _without_slivers(kept)
        choice = choose_agent({0: [], 1: [], **_lanes(kept)}, meta.direction)
        logger.debug("%s: agent cluster evidence: %s", meta.call_id, choice.describe())
        agent = 0 if choice.agent is None else choice.agent
        lanes = {agent: AGENT, 1 - agent: CUSTOMER}
        channel, method = None, "diarization"
    else:
        channel, method = agent_channel([piece for piece, _text in kept], meta, n_channels)
        lanes = {} if channel is None else {channel: AGENT, 1 - channel: CUSTOMER}
        kept, prompts = _take_prompts(kept, channel, centre_prompts) if channel is not None else (kept, [])
    for piece, text in prompts:
        logger.debug("%s: recorded announcement %.1f-%.1f %r", meta.call_id, piece.start, piece.end, text)
    announced = {id(piece) for piece, _text in prompts}
    kept = sorted(kept + prompts, key=lambda pair: (pair[0].start, pair[0].channel))
    dropped.sort(key=lambda triple: (triple[0].start, triple[0].channel))

    def role(segment: RawSegment) -> str:
        return SYSTEM if id(segment) in announced else lanes.get(segment.channel, UNKNOWN)

    def utterance(n: int, segment: RawSegment, text: str, prefix: str = "") -> Utterance:
        return Utterance(
            utterance_id=f"{meta.call_id}-{prefix}{n:05d}",
            call_id=meta.call_id,
            speaker=role(segment),
            channel=segment.channel if n_channels > 1 else 0,
            start=round(segment.start, 3),
            end=round(segment.end, 3),
            text=text,
            raw_text=segment.text,
            avg_logprob=segment.avg_logprob,
            no_speech_prob=segment.no_speech_prob,
            words=tuple(Word(to_simplified(w.text), round(w.start, 3), round(w.end, 3), round(w.prob, 4)) for w in segment.words),
        )

    return CallTranscript(
        call_id=meta.call_id,
        duration_s=round(duration_s, 3),
        n_channels=n_channels,
        utterances=tuple(utterance(n, s, t) for n, (s, t) in enumerate(kept)),
        model=model,
        events=tuple(events),
        agent_channel=channel,
        agent_channel_method=method,
        dropped=tuple(utterance(n, s, t, prefix="x") for n, (s, t, _r) in enumerate(dropped)),
        drop_reasons=tuple(r for _s, _t, r in dropped),
    )
