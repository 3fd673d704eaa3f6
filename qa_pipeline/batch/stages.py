"""One call through the stages: decode → transcribe (+ tones) → speakers → score.

TranscribeStage owns the models (Whisper, the speaker embedder; each loaded once, on the first call
that needs it) and the transcript cache; process_call runs one planned call to its CallPart, turning
every failure but an unusable model into a failed part. Both engines call these, the local one in
this process, the Ray one inside its workers.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from qa_pipeline.asr.loops import loop_spans, redecode_loops
from qa_pipeline.asr.transcribe import Transcriber, pick_compute_type, pick_device
from qa_pipeline.audio.decode import DecodedAudio, audio_digest, decode_to_files, is_silent
from qa_pipeline.audio.tones import find_busy_tones
from qa_pipeline.batch.config import TranscribeConfig
from qa_pipeline.batch.crashes import CRASHED_ERROR
from qa_pipeline.batch.store import TranscriptCache, cache_key, fault, now
from qa_pipeline.errors import CallFailed, ModelError, NoSpeech
from qa_pipeline.heap import share_one_arena
from qa_pipeline.mood.voice import VOICE_VERSION, voice_tracks, with_voice
from qa_pipeline.records import CachedAudio, CallMeta, CallOutcome, CallPart, CallScore, RawSegment, StageResult, Todo
from qa_pipeline.scoring.rubric import Rubric
from qa_pipeline.meaning.judge import default_judge, embeddings_dir
from qa_pipeline.scoring.score import score_call
from qa_pipeline.speakers.diarize import SpeakerModelMissing, call_regions, default_embedder, diarize, speaker_model_id
from qa_pipeline.speakers.roles import build_transcript, channel_levels

logger = logging.getLogger("qa_pipeline")

Decoded = tuple[str, DecodedAudio, float]  # (the run's digest of the audio, audio, seconds spent decoding)

DECODED_DIR = "decoded"  # under the transcript cache: calls decoded to raw files while they are worked on
DECODED_MAX_AGE_S = 2 * 86400  # a folder left this long by a run that died is removed


def discard(audio: DecodedAudio) -> None:
    """Remove the files of a call decoded by :meth:`TranscribeStage.decode`."""
    folders = {Path(ch.path).parent for ch in audio.channels if hasattr(ch, "path")}
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


class TranscribeStage:
    """decode → Whisper → tones → speakers, cached per (audio, model, options); loads the model only on a miss."""

    def __init__(self, config: TranscribeConfig, cache: TranscriptCache, transcriber: Transcriber | None = None) -> None:
        self.config = config
        self.cache = cache
        self._transcriber = transcriber
        self._embedder = None  # SpeakerEmbedder, False when missing, None before the first mono call
        self._prefilled: dict[str, dict[str, float]] = {}  # cache key → stage seconds, from prefill()
        self._handed: dict[str, Decoded] = {}  # cache key → a call prefill() decoded but did not transcribe
        if transcriber is not None:
            self.model_label = transcriber.describe()
        else:  # the same label whether or not this run ends up loading the model
            device = pick_device(config.device)
            self.model_label = f"{config.model} ({device}, {pick_compute_type(device, config.compute_type)})"
        self._decoded_root = Path(cache.root) / DECODED_DIR
        _remove_stale(self._decoded_root)
        share_one_arena()  # a no-op after `qa run` set it; in a Ray worker, whatever its threads allow

    def settings(self) -> dict:
        """What a call's result depends on besides its audio, metadata and rubric."""
        c = self.config
        return {"model": c.model, "model_label": self.model_label, "device": c.device.value,
                "compute_type": c.compute_type, "transcribe": c.options.cache_key(),
                "diarizer": speaker_model_id(), "voice": VOICE_VERSION, "max_duration_s": c.max_duration_s, "cpu_threads": c.cpu_threads}

    def cache_key(self, digest: str) -> str:
        # the threads per model replica are part of the key: on some CPUs (Intel MKL) they change
        # Whisper's numbers, so a transcript is only ever reused under the same thread count
        return cache_key(digest, self.config.model, {**self.config.options.cache_key(),
                                                     "compute_type": self.config.compute_type,
                                                     "cpu_threads": self.config.cpu_threads})

    def decode(self, meta: CallMeta) -> DecodedAudio:
        """The call decoded to raw files under the cache (never whole in memory: a 4-hour stereo
        call is 1.8 GB at 16 kHz); :func:`discard` removes them."""
        folder = self._decoded_root / f"{time.strftime('%Y%m%d')}-{secrets.token_hex(6)}"
        try:
            return decode_to_files(meta.path, folder, max_duration_s=self.config.max_duration_s)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def prefill(self, work: Sequence[tuple[CallMeta, str | None]], decoded: list[Decoded] | None = None) -> None:
        """Transcribe the uncached calls of `work` together and cache them: the packed decoder
        fills its batches from all of them. A call that cannot be decoded is left to run(), which
        meets the same error and reports it; so is the whole group when the model fails on it.
        `decoded`: what decode_group(work) returned, when a worker thread ran it ahead of time."""
        if self.config.options.decoder != "packed":
            return
        self.release()  # what the previous group left untaken
        pending = decoded if decoded is not None else self.decode_group(work)
        audible = [d for d in pending if not is_silent(d[1])]
        try:
            if len(audible) >= 2:
                for meta, _digest in work:
                    fault("transcribe", meta.call_id)
            self._prefill(audible)
        finally:
            # a call decoded here that the model was not given (alone in its group, or silent) is handed
            # to run(), which would otherwise decode it again; the calls of a group the model failed on
            # are tried alone from the start, as if the group had not been
            for d in pending:
                if len(audible) < 2 or is_silent(d[1]):
                    self._handed[self.cache_key(d[0])] = d
                else:
                    discard(d[1])

    def release(self) -> None:
        """Remove the decoded calls prefill() handed over that no run() took."""
        for _digest, audio, _s in self._handed.values():
            discard(audio)
        self._handed.clear()

    def _prefill(self, pending: list[Decoded]) -> None:
        """Transcribe `pending` together and cache each call."""
        if len(pending) < 2:
            return
        t0 = time.monotonic()
        try:
            results = self.load_model().transcribe_many([audio.channels for _d, audio, _s in pending])
        except Exception as e:  # run() tries each call alone, so that only a call the model fails on fails
            logger.warning("a group of %d calls failed in the speech model (%s: %s); each is tried alone",
                           len(pending), type(e).__name__, e)
            return
        total_audio = sum(audio.duration_s for _d, audio, _s in pending) or 1.0
        transcribe_s = time.monotonic() - t0
        for (digest, audio, decode_s), segments in zip(pending, results):
            stages = {"decode": decode_s, "transcribe": transcribe_s * audio.duration_s / total_audio}
            entry = self._entry(audio, segments, stages)
            key = self.cache_key(audio.digest or digest)  # what was decoded, should the file have changed since
            self.cache.put(key, entry)
            self._prefilled[key] = stages

    def decode_group(self, work: Sequence[tuple[CallMeta, str | None]]) -> list[Decoded]:
        """(digest, audio, seconds) of each uncached, decodable call of `work` (a silent one's files
        already removed: its peak says all); safe to run in a worker thread while the model works on
        the previous group."""
        if self.config.options.decoder != "packed":
            return []
        pending = []
        for meta, digest in work:
            if digest is None or self.cache.contains(self.cache_key(digest)):
                continue
            t0 = time.monotonic()
            try:
                audio = self.decode(meta)
            except CallFailed:
                continue
            if is_silent(audio):
                discard(audio)
            pending.append((digest, audio, time.monotonic() - t0))
        return pending

    def _entry(self, audio: DecodedAudio, segments: Sequence[RawSegment], stages: dict[str, float]) -> CachedAudio:
        """What the cache keeps of a freshly transcribed call: segments, tones, speaker turns."""
        t0 = time.monotonic()
        events = [e for i, ch in enumerate(audio.channels) for e in find_busy_tones(ch, audio.sample_rate, channel=i)]
        stages["tones"] = time.monotonic() - t0
        entry = _with_decode(CachedAudio(audio.duration_s, audio.n_channels, tuple(segments), tuple(events)), audio)
        entry = self._diarized(self._levelled(self._unlooped(entry, audio, stages), audio, stages), audio, stages)
        return self._voiced(entry, audio, stages)

    def _voiced(self, entry: CachedAudio, audio: DecodedAudio, stages: dict[str, float]) -> CachedAudio:
        """Each channel's pitch and level tracks, for the customer's mood (mood.voice)."""
        if entry.voice is not None and entry.voice.version == VOICE_VERSION:
            return entry
        t0 = time.monotonic()
        tracks = voice_tracks(audio.channels, audio.sample_rate)
        stages["voice"] = time.monotonic() - t0
        return replace(entry, voice=tracks)

    def _unlooped(self, entry: CachedAudio, audio: DecodedAudio, stages: dict[str, float]) -> CachedAudio:
        """Where the decode looped, the stretch decoded again (asr.loops)."""
        if entry.loops_redecoded:
            return entry
        if loop_spans(entry.segments):
            t0 = time.monotonic()
            segments = redecode_loops(self.load_model(), audio.channels, entry.segments, audio.sample_rate)
            stages["redecode"] = time.monotonic() - t0
            entry = replace(entry, segments=tuple(segments))
        return replace(entry, loops_redecoded=True)

    def _levelled(self, entry: CachedAudio, audio: DecodedAudio, stages: dict[str, float]) -> CachedAudio:
        """Each channel's loudness envelope: for telling channel bleed from speech (stereo) and words
        Whisper wrote over noise from speech (mono too)."""
        if entry.n_channels not in (1, 2) or entry.levels is not None:
            return entry
        t0 = time.monotonic()
        levels = channel_levels(audio.channels, audio.sample_rate)
        stages["levels"] = time.monotonic() - t0
        return replace(entry, levels=levels)

    def _diarized(self, entry: CachedAudio, audio: DecodedAudio, stages: dict[str, float]) -> CachedAudio:
        if entry.n_channels != 1 or not self._undiarized(entry) or not entry.segments or self.embedder() is None:
            return entry
        t0 = time.monotonic()
        turns = diarize(audio.channels[0], audio.sample_rate, call_regions(audio.channels[0], entry.segments),
                        embedder=self.embedder())
        stages["diarize"] = time.monotonic() - t0
        return replace(entry, speaker_turns=tuple((t.start, t.end, t.cluster) for t in turns), diarizer=speaker_model_id())

    @staticmethod
    def _undiarized(entry: CachedAudio) -> bool:
        """No speaker turns yet, or turns from another speaker model or clustering."""
        return entry.speaker_turns is None or entry.diarizer != speaker_model_id()

    def embedder(self):
        """The speaker-embedding model for mono calls, or None when it is not installed (mono calls
        then keep one 'unknown' speaker; the warning says how to install it)."""
        if self._embedder is None:
            try:
                self._embedder = default_embedder(self.config.cpu_threads)
            except SpeakerModelMissing as e:
                logger.warning("mono calls get no speaker labels: %s", e)
                self._embedder = False
        return self._embedder or None

    def load_model(self) -> Transcriber:
        """The Whisper model, loaded on the first call (ModelError when it cannot be)."""
        if self._transcriber is None:
            c = self.config
            self._transcriber = Transcriber(c.model, device=c.device.value, compute_type=c.compute_type,
                                            options=c.options, cpu_threads=c.cpu_threads)
        return self._transcriber

    def run(self, meta: CallMeta, digest: str | None = None, centre_prompts: Sequence[str] = ()) -> StageResult:
        """The call's transcript, whether it came from the cache, and each stage's seconds.
        `centre_prompts`: the texts of the centre's recorded announcements (rubric `centre: prompts`)."""
        stages: dict[str, float] = {}
        entry, from_cache = self.entry(meta, digest, stages)
        t0 = time.monotonic()
        transcript = build_transcript(
            meta, entry.segments, duration_s=entry.duration_s, n_channels=entry.n_channels,
            model=self.model_label, events=entry.events, split_gap_s=self.config.options.split_gap_s,
            speaker_turns=entry.speaker_turns, levels=entry.levels, centre_prompts=centre_prompts,
        )
        transcript = replace(with_voice(transcript, entry.voice), decoded_s=entry.decoded_s, container_s=entry.container_s,
                             lost_s=entry.lost_s, decode_errors=entry.decode_errors, audio_note=entry.audio_note)
        stages["speakers"] = time.monotonic() - t0
        if not transcript.utterances:
            raise NoSpeech("no usable speech: every segment was rejected as a hallucination"
                           + _lost_words(entry.decoded_s, entry.lost_s, entry.audio_note))
        return StageResult(transcript, from_cache, stages)

    def entry(self, meta: CallMeta, digest: str | None = None,
              stages: dict[str, float] | None = None) -> tuple[CachedAudio, bool]:
        """What the cache holds for the call, made or brought up to date first, and whether it
        came from the cache; each stage's seconds go into `stages`."""
        stages = {} if stages is None else stages
        digest = digest or audio_digest(meta.path)
        key = self.cache_key(digest)
        handed = self._handed.pop(key, None)
        audio = handed[1] if handed is not None else None
        if handed is not None:
            stages["decode"] = handed[2]
        entry = self.cache.get(key)
        from_cache = entry is not None and key not in self._prefilled
        stages.update(self._prefilled.pop(key, {}))
        try:
            if entry is not None and entry.decoded_s is None:  # cached before decoding said what it lost
                audio = audio or self._decoded(meta, stages)
                entry = _checked(entry, audio)
                if entry is not None:
                    self.cache.put(key, entry)
                from_cache = entry is not None
            if entry is None:
                audio = audio or self._decoded(meta, stages)
                if audio.digest and audio.digest != digest:
                    # the file changed after the run hashed it: what was decoded is cached under its own key
                    logger.warning("%s: the file changed since this run read it; working on it as it is now",
                                   meta.call_id)
                    key = self.cache_key(audio.digest)
                    entry = self.cache.get(key)
                    entry = None if entry is None or entry.decoded_s is None else entry
                    from_cache = entry is not None and key not in self._prefilled
                    stages.update(self._prefilled.pop(key, {}))
            if entry is None:
                if is_silent(audio):
                    raise NoSpeech(f"silent recording: nothing louder than -60 dBFS in {audio.duration_s:.0f} s of "
                                   f"audio{_lost_words(audio.decoded_s, audio.lost_s, audio.note)}")
                t0 = time.monotonic()
                model = self.load_model()  # ModelError here stops the batch: every call would fail alike
                fault("transcribe", meta.call_id)
                try:
                    segments = model.transcribe(audio.channels)
                except RuntimeError as e:  # ctranslate2 (out of memory, CUDA …) on this call: the batch goes on
                    raise CallFailed(f"speech model failed: {e}") from e
                stages["transcribe"] = time.monotonic() - t0
                entry = self._entry(audio, segments, stages)
                self.cache.put(key, entry)
            if not entry.segments:
                raise NoSpeech("no speech found in the recording (silent or not speech)"
                               + _lost_words(entry.decoded_s, entry.lost_s, entry.audio_note))
            if not entry.loops_redecoded:  # cached before loops were decoded again
                if loop_spans(entry.segments):
                    audio = audio or self.decode(meta)
                entry = self._unlooped(entry, audio, stages)
                self.cache.put(key, entry)
            if entry.n_channels == 1 and self._undiarized(entry) and self.embedder() is not None:
                # cached before the speaker model was installed, or by another diarizer
                audio = audio or self.decode(meta)
                entry = self._diarized(entry, audio, stages)
                self.cache.put(key, entry)
            if entry.n_channels in (1, 2) and entry.levels is None:  # cached before levels were kept
                audio = audio or self.decode(meta)
                entry = self._levelled(entry, audio, stages)
                self.cache.put(key, entry)
            if entry.voice is None or entry.voice.version != VOICE_VERSION:  # cached before voices were measured
                audio = audio or self.decode(meta)
                entry = self._voiced(entry, audio, stages)
                self.cache.put(key, entry)
        finally:
            if audio is not None:
                discard(audio)
        return entry, from_cache

    def _decoded(self, meta: CallMeta, stages: dict[str, float]) -> DecodedAudio:
        t0 = time.monotonic()
        audio = self.decode(meta)
        stages["decode"] = stages.get("decode", 0.0) + time.monotonic() - t0
        return audio


def _with_decode(entry: CachedAudio, audio: DecodedAudio) -> CachedAudio:
    """`entry` with what decoding `audio` said: seconds decoded and lost, errors, notes."""
    return replace(entry, decoded_s=round(audio.decoded_s, 3), container_s=audio.container_s,
                   lost_s=round(audio.lost_s, 3), decode_errors=audio.decode_errors, audio_note=audio.note)


def _checked(entry: CachedAudio, audio: DecodedAudio) -> CachedAudio | None:
    """An entry cached before decoding said what it lost, with that added; None when its transcript
    is not of this decode (an older decode stopped at a damaged frame, or heard the channels otherwise)."""
    if entry.n_channels != audio.n_channels or abs(entry.duration_s - audio.duration_s) > 0.1:
        return None
    return _with_decode(entry, audio)


def _lost_words(decoded_s: float | None, lost_s: float, note: str | None) -> str:
    """What a failure's message adds when the audio was not all decoded: a decoder's errors never
    pass for a recording without speech."""
    if not lost_s or decoded_s is None:
        return ""
    return f"; only {decoded_s:.1f} s of {decoded_s + lost_s:.1f} s could be decoded ({note})"


def _remove_stale(root: Path) -> None:
    """Decoded calls left by runs that died (a folder per call, removed when the call is done)."""
    if not root.is_dir():
        return
    cutoff = time.time() - DECODED_MAX_AGE_S
    for folder in root.iterdir():
        try:
            if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def process_call(item: Todo, stage: TranscribeStage, rubric: Rubric) -> CallOutcome:
    """One planned call, start to score. Every failure but an unusable model (ModelError, raised:
    every call would fail alike) becomes a failed part. `seconds`: the time spent here."""
    t_start = time.monotonic()
    meta = item.meta
    processed_at = now()
    stages: dict[str, float] = {}
    from_cache = False
    try:
        result = stage.run(meta, item.digest or audio_digest(meta.path), rubric.centre.prompts)
        stages.update(result.stages)
        from_cache = result.from_cache
        t0 = time.monotonic()
        judge = default_judge(rubric.encoder, embeddings_dir(stage.cache.root)) if rubric.uses_meaning else None
        score = score_call(result.transcript, meta, rubric, processed_at=processed_at, judge=judge)
        stages["score"] = time.monotonic() - t0
        part = CallPart(meta.call_id, item.fingerprint, score, result.transcript, inputs=item.inputs)
    except CallFailed as e:
        logger.warning("%s: %s", meta.call_id, e)
        part = _failed_part(item, stage, rubric, str(e), type(e).__name__, e.retry, processed_at)
    except ModelError:
        raise
    except Exception as e:  # a bug must cost one call, not the night's batch
        logger.exception("%s: unexpected error", meta.call_id)
        part = _failed_part(item, stage, rubric, f"internal error ({type(e).__name__}: {e}); please report it",
                            "internal", True, processed_at)
    return CallOutcome(meta.call_id, part, from_cache, stages, time.monotonic() - t_start)


def lost_call(item: Todo, stage: TranscribeStage, rubric: Rubric, error: str) -> CallOutcome:
    """A call whose worker was lost before it reported (an engine's, not the call's, failure):
    failed, and retried by the next run."""
    return CallOutcome(item.meta.call_id, _failed_part(item, stage, rubric, error, "WorkerDied", True, now()),
                       False, {}, None)


def crashed_call(item: Todo, stage: TranscribeStage, rubric: Rubric) -> CallOutcome:
    """A call that has crashed the worker twice (batch.crashes): failed, and not tried again until
    its recording changes (the fingerprint holds the audio's digest)."""
    return CallOutcome(item.meta.call_id, _failed_part(item, stage, rubric, CRASHED_ERROR, "Crashed", False, now()),
                       False, {}, None)


def _failed_part(item: Todo, stage: TranscribeStage, rubric: Rubric, error: str, kind: str, retry: bool,
                 processed_at: str) -> CallPart:
    score = failed_score(item.meta, rubric, error, model=stage.model_label, processed_at=processed_at)
    return CallPart(item.meta.call_id, item.fingerprint, score, None, retry=retry, error_kind=kind, inputs=item.inputs)


def failed_score(meta: CallMeta, rubric: Rubric | None, error: str, *, model: str | None, processed_at: str) -> CallScore:
    return CallScore(
        call_id=meta.call_id, status="failed", agent_id=meta.agent_id, agent_name=meta.agent_name, team=meta.team,
        started_at=meta.started_at, rubric_id=rubric.id if rubric else None,
        rubric_version=str(rubric.version) if rubric else None, error=error, model=model, processed_at=processed_at,
    )
