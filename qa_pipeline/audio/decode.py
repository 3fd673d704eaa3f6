"""Decode any audio file PyAV reads into 16 kHz float32, one array per channel.

What the pipeline hears is what this module decoded, and it says what it could not decode:

- Damaged data does not end the call. As ffmpeg does, a packet the decoder refuses (a corrupt MP3
  or AAC frame) is skipped and the decode goes on; its stretch of the timeline becomes silence,
  so every later word keeps its time in the file. DecodedAudio counts the packets skipped
  (``decode_errors``) and the seconds lost (``lost_s``: the silence put in, plus what is missing
  at the end of a file cut short of the duration its header states).
- Every audio stream is heard: two mono streams (some recorders write each side of the call as a
  stream of its own) are the two channels of a stereo call; more than two channels in all are
  refused.
- A stereo file whose two channels are the same recording (an older PBX saving a mono call twice)
  is heard as the mono call it is (channels.same_recording).
- AMR is decoded by OpenCORE where PyAV has it: FFmpeg's own AMR decoders do not implement DTX
  (the comfort-noise frames most phone recorders write) and turn such a file into garbled audio.
- ``digest`` is the sha256 of the very bytes decoded (the file is hashed through the descriptor
  it is then decoded from), so a file replaced after a run hashed it cannot be cached under the
  old content's key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qa_pipeline.audio.channels import mean_chunks, same_recording
from qa_pipeline.errors import AudioChanged, AudioMissing, DecodeError
from qa_pipeline.files import file_digest

logger = logging.getLogger("qa_pipeline")

SAMPLE_RATE = 16000
DEFAULT_MAX_DURATION_S = 4 * 3600.0
SILENCE_PEAK = 1e-3  # about -60 dBFS: below this everywhere, a recording holds nothing to hear

# codec → the decoder to use when PyAV has it (else FFmpeg's own, named by the stream)
PREFERRED_DECODERS = {"amrnb": "libopencore_amrnb", "amrwb": "libopencore_amrwb"}
# container formats whose duration comes from a header (not estimated from the bit rate, as for raw
# AMR, whose DTX frames make any such estimate wrong): a decode that ends well before it lost the rest
STATED_DURATION_FORMATS = frozenset({"wav", "w64", "mov,mp4,m4a,3gp,3g2,mj2", "flac", "ogg", "mp3", "aiff",
                                     "caf", "matroska,webm"})
MISSING_END_S = 0.1  # a shorter shortfall is codec padding and priming, not lost audio
# raw bitstreams whose demuxer skips bytes it cannot parse to the next frame header: the frames in
# those bytes vanish from the timeline without an error, so a jump in the packets' byte positions
# is audio lost (put back as silence of the length those bytes held)
RESYNC_FORMATS = frozenset({"mp3", "aac", "amr", "amrnb", "amrwb", "ac3", "eac3", "adts"})


@dataclass(frozen=True)
class DecodedAudio:
    # one float32 channel per channel heard, all the same length: an array in memory, or a
    # stream.FileChannel on disk (decode_to_files); both are read by slices and len()
    channels: tuple
    sample_rate: int
    source_rate: int
    source_codec: str
    digest: str = ""  # sha256 of the file's bytes that were decoded ("" for audio not from a file)
    source_channels: int = 0  # channels in the file, all audio streams together (0: as channels)
    container_s: float | None = None  # the duration the container states; None: none, or an estimate
    damaged_s: float = 0.0  # silence put in place of packets that could not be decoded
    missing_s: float = 0.0  # how much shorter than container_s the decoded timeline is
    decode_errors: int = 0  # packets (or frames) that could not be decoded
    notes: tuple[str, ...] = ()  # what a reader of the recordings table should know, in English
    peak: float | None = None  # the largest absolute sample, measured while decoding

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def duration_s(self) -> float:
        return len(self.channels[0]) / self.sample_rate if self.channels else 0.0

    @property
    def decoded_s(self) -> float:
        """Seconds of the recording actually decoded."""
        return max(0.0, self.duration_s - self.damaged_s)

    @property
    def lost_s(self) -> float:
        """Seconds of the recording that could not be decoded."""
        return self.damaged_s + self.missing_s

    @property
    def note(self) -> str | None:
        return "; ".join(self.notes) or None


def decode(path: Path, *, max_duration_s: float = DEFAULT_MAX_DURATION_S) -> DecodedAudio:
    """Read `path` and return its channels at 16 kHz in memory; raise DecodeError for anything unusable.

    The channel count is read from the container: faster-whisper's decode_audio(split_stereo=True)
    would return two identical halves for a mono file.
    """
    return _decode(path, max_duration_s, _MemorySink())


def decode_to_files(path: Path, folder: Path, *, max_duration_s: float = DEFAULT_MAX_DURATION_S) -> DecodedAudio:
    """:func:`decode`, but each channel goes to a raw float32 file in ``folder`` as it is decoded
    and comes back as a :class:`~qa_pipeline.audio.stream.FileChannel`: a 4-hour call never lies in
    memory (it would take 1.8 GB at 16 kHz). The caller removes ``folder``'s files."""
    return _decode(path, max_duration_s, _FileSink(Path(folder)))


class _MemorySink:
    def __init__(self) -> None:
        self.parts: dict[int, list[np.ndarray]] = {}

    def write(self, channel: int, samples: np.ndarray) -> None:
        self.parts.setdefault(channel, []).append(np.ascontiguousarray(samples, dtype=np.float32))

    def channels(self, n: int) -> tuple:
        return tuple(np.concatenate(self.parts.get(c) or [np.zeros(0, np.float32)]) for c in range(n))

    def mono(self, a, b) -> tuple:
        return (np.concatenate(list(mean_chunks(a, b)) or [np.zeros(0, np.float32)]),)

    def close(self) -> None:
        pass


class _FileSink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[int, object] = {}
        self.counts: dict[int, int] = {}

    def write(self, channel: int, samples: np.ndarray) -> None:
        if channel not in self.files:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.files[channel] = open(self.folder / f"channel-{channel}.f32", "wb")
            self.counts[channel] = 0
        np.ascontiguousarray(samples, dtype=np.float32).tofile(self.files[channel])
        self.counts[channel] += len(samples)

    def channels(self, n: int) -> tuple:
        from qa_pipeline.audio.stream import FileChannel

        self.close()
        for c in range(n):
            if c not in self.files:
                self.write(c, np.zeros(0, np.float32))
        self.close()
        return tuple(FileChannel(self.folder / f"channel-{c}.f32", self.counts[c]) for c in range(n))

    def mono(self, a, b) -> tuple:
        from qa_pipeline.audio.stream import FileChannel

        path = self.folder / "mono.f32"
        with open(path, "wb") as f:
            for chunk in mean_chunks(a, b):
                chunk.tofile(f)
        for channel in (a, b):
            Path(channel.path).unlink(missing_ok=True)
        return (FileChannel(path, len(a)),)

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _decode(path: Path, max_duration_s: float, sink) -> DecodedAudio:
    """Decode ``path`` into ``sink`` at 16 kHz; DecodeError (or AudioMissing, AudioChanged) for
    anything unusable."""
    path = Path(path)
    if check_readable(path) == 0:
        raise DecodeError(f"audio file is empty (0 bytes): {path.name}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO put there since would not block
    except FileNotFoundError as e:
        raise AudioMissing(f"audio file not found: {path}") from e
    except PermissionError as e:
        raise AudioMissing(f"cannot read {path}: permission denied") from e
    except OSError as e:
        raise AudioMissing(f"cannot read {path}: {e.strerror or e}") from e
    with os.fdopen(fd, "rb") as f:
        before = os.fstat(f.fileno())
        if not stat.S_ISREG(before.st_mode):
            raise AudioMissing(f"cannot read {path}: not a regular file")
        digest = hashlib.sha256()
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
        f.seek(0)
        try:
            audio = _decode_file(f, path.name, max_duration_s, sink, peek=lambda at, n: os.pread(f.fileno(), n, at))
        finally:
            sink.close()
        after = os.fstat(f.fileno())
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise AudioChanged(f"{path.name} changed while it was being decoded; the next run tries it again")
    return replace(audio, digest=digest.hexdigest())


def _decode_file(f, name: str, max_duration_s: float, sink, *, peek=None) -> DecodedAudio:
    import av  # heavy: keep `qa --help` fast

    try:
        container = av.open(f, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        # FFmpeg's own words, without the "input" it names: for an open file that is its descriptor
        # number ('5'), which moves with whatever else the process has open (the reason must not)
        detail = e.strerror if isinstance(e, av.FFmpegError) and e.strerror else _short(e)
        raise DecodeError(f"not a readable audio file: {name} ({detail})") from e
    with container:
        streams = list(container.streams.audio)
        if not streams:
            raise DecodeError(f"no audio stream in {name}")
        for stream in streams:
            if stream.codec_context is None:  # a codec this FFmpeg build does not know
                tag = getattr(stream, "codec_tag", None) or "unknown"
                raise DecodeError(f"cannot decode {name}: unsupported audio codec ({tag})")
        n_channels = sum(s.codec_context.channels for s in streams)
        if n_channels not in (1, 2) or any(s.codec_context.channels not in (1, 2) for s in streams):
            where = f"{len(streams)} audio streams with " if len(streams) > 1 else ""
            raise DecodeError(f"{name} has {where}{n_channels} channels; only mono and stereo calls are supported")
        stated = container.duration / 1e6 if container.duration is not None else None
        if stated is not None and stated > max_duration_s:
            raise DecodeError(
                f"{name} is {stated / 3600:.1f} h long, over the limit of {max_duration_s / 3600:.1f} h (--max-duration)"
            )
        starts = [float(s.start_time * s.time_base) if s.start_time is not None else 0.0 for s in streams]
        decoders, first = [], 0
        for stream, start in zip(streams, starts):
            lead = start - min(starts) if len(streams) > 1 else 0.0  # streams that start later keep their place
            decoders.append(_StreamDecoder(av, stream, first, sink, name, max_duration_s, lead,
                                           peek=peek if container.format.name in RESYNC_FORMATS else None))
            first += stream.codec_context.channels
        by_index = {d.index: d for d in decoders}
        packets = container.demux(*streams)
        unread = None
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as e:  # the container itself is damaged past here: keep what was read
                unread = _short(e)
                break
            if packet.size and packet.stream.index in by_index:
                by_index[packet.stream.index].feed(packet)
        for d in decoders:
            d.flush()
        fmt = container.format.name
    length = max(d.samples for d in decoders)
    for d in decoders:
        d.pad_to(length)
    damaged = max(d.damaged for d in decoders) / SAMPLE_RATE
    errors = sum(d.errors for d in decoders)
    if length - max(d.damaged for d in decoders) <= 0:
        first_error = next((d.first_error for d in decoders if d.first_error), None)
        raise DecodeError(f"cannot decode {name}: {first_error}" if first_error else f"no audio samples in {name}")
    if length < SAMPLE_RATE // 10:
        raise DecodeError(f"{name} holds less than 0.1 s of audio")
    container_s = stated if fmt in STATED_DURATION_FORMATS else None
    missing = container_s - length / SAMPLE_RATE if container_s is not None else 0.0
    missing = missing if missing > MISSING_END_S else 0.0
    notes = []
    if len(streams) > 1:
        notes.append(f"{len(streams)} mono audio streams: heard as the two channels of a stereo call, stream by stream")
    if errors:
        notes.append(f"{damaged:.2f} s could not be decoded ({errors} decode error{'s' if errors > 1 else ''}): "
                     "silence in its place")
    if missing:
        notes.append(f"the decode ends {missing:.1f} s before the {container_s:.1f} s the container states")
    if unread:
        notes.append(f"the file could not be read to its end ({unread})")
    channels = sink.channels(n_channels)
    if n_channels == 2:
        correlation = same_recording(*channels)
        if correlation is not None:
            channels = sink.mono(*channels)
            notes.append(f"its two channels are the same recording (correlation {correlation:.3f}): heard as mono")
    if errors or missing or unread:
        logger.warning("%s: %s", name, "; ".join(notes))
    return DecodedAudio(
        channels=channels,
        sample_rate=SAMPLE_RATE,
        source_rate=int(streams[0].rate or SAMPLE_RATE),
        source_codec="+".join(dict.fromkeys(d.codec for d in decoders)),
        source_channels=n_channels,
        container_s=container_s,
        damaged_s=damaged,
        missing_s=missing,
        decode_errors=errors,
        notes=tuple(notes),
        peak=max(d.peak for d in decoders),
    )


class _StreamDecoder:
    """One audio stream decoded packet by packet into channels ``first``… of the sink, at 16 kHz;
    a packet (or frame) that cannot be decoded becomes silence of its length."""

    def __init__(self, av, stream, first: int, sink, name: str, max_duration_s: float, lead_s: float,
                 *, peek=None) -> None:
        self.av = av
        self.index = stream.index
        self.first = first
        self.sink = sink
        self.name = name
        self.max_samples = max_duration_s * SAMPLE_RATE
        self.time_base = stream.time_base
        self.n_channels = stream.codec_context.channels
        self.context = _decoder_for(av, stream)
        self.codec = self.context.name
        self.resampler = av.audio.resampler.AudioResampler(
            format="fltp", layout="mono" if self.n_channels == 1 else "stereo", rate=SAMPLE_RATE)
        self.shape = None  # (format, layout, rate) of the stream's first good frame
        self.samples = 0  # written, silence included
        self.damaged = 0  # samples of silence written for what could not be decoded
        self.errors = 0
        self.first_error: str | None = None
        self.frame_s = 0.0  # length of the last good frame: the guess for a damaged packet of unknown length
        self.peak = 0.0
        self.peek = peek  # (offset, n) → the file's bytes there; set for formats whose demuxer resyncs
        self.resyncs = peek is not None
        self.next_pos: int | None = None  # byte where the next packet should start (resyncing formats)
        self.bytes_per_s = 0.0  # of the last packet (resyncing formats)
        if lead_s > 0:
            self._write(np.zeros((self.n_channels, round(lead_s * SAMPLE_RATE)), np.float32))

    def feed(self, packet) -> None:
        if self.resyncs:
            self._skipped_bytes(packet)
        try:
            frames = self.context.decode(packet)
        except self.av.FFmpegError as e:
            seconds = float(packet.duration * self.time_base) if packet.duration else self.frame_s
            if self.resyncs and self.bytes_per_s > 0:  # the parser may have put the damaged bytes in this packet
                seconds = max(seconds, packet.size / self.bytes_per_s)
            self._lost(seconds, e)
            return
        self._good_packet(packet)
        for frame in frames:
            self._frame(frame)

    def _skipped_bytes(self, packet) -> None:
        """Bytes the demuxer skipped before `packet` (damaged frames it could not parse): lost audio."""
        pos, size = packet.pos, packet.size
        if pos is None or pos < 0:
            return
        if (self.next_pos is not None and pos > self.next_pos and self.bytes_per_s > 0
                and not self.peek(self.next_pos, 3) in (b"ID3", b"TAG")):  # a tag between two files joined is not audio
            self._lost((pos - self.next_pos) / self.bytes_per_s, f"{pos - self.next_pos} bytes skipped at byte {self.next_pos}")
        self.next_pos = pos + size

    def _good_packet(self, packet) -> None:
        if self.resyncs and packet.duration:
            self.bytes_per_s = packet.size / float(packet.duration * self.time_base)

    def flush(self) -> None:
        try:
            frames = self.context.decode(None)
        except self.av.FFmpegError as e:
            self._lost(0.0, e)
            frames = []
        for frame in frames:
            self._frame(frame)
        if self.shape is not None:
            for out in self.resampler.resample(None):
                self._write(out.to_ndarray())

    def pad_to(self, length: int) -> None:
        """Silence after a stream that ends before the others (not lost: it had nothing more)."""
        if length > self.samples:
            self._write(np.zeros((self.n_channels, length - self.samples), np.float32))

    def _frame(self, frame) -> None:
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self.shape is None:
            self.shape = shape
        elif shape != self.shape:  # damaged data that parsed as a frame of another rate or layout
            self._lost(frame.samples / frame.sample_rate if frame.sample_rate else self.frame_s,
                       f"a frame of another format {shape}")
            return
        self.frame_s = frame.samples / frame.sample_rate
        frame.pts = None
        for out in self.resampler.resample(frame):
            self._write(out.to_ndarray())

    def _lost(self, seconds: float, error) -> None:
        self.errors += 1
        self.first_error = self.first_error or (error if isinstance(error, str) else _short(error))
        n = round(seconds * SAMPLE_RATE)
        if n > 0:
            self._write(np.zeros((self.n_channels, n), np.float32))
            self.damaged += n

    def _write(self, samples: np.ndarray) -> None:
        if samples.shape[1] == 0:
            return
        for c in range(samples.shape[0]):
            self.sink.write(self.first + c, samples[c])
        self.peak = max(self.peak, float(np.max(np.abs(samples))))
        self.samples += samples.shape[1]
        if self.samples > self.max_samples:
            raise DecodeError(f"{self.name} decodes to more than {self.max_samples / SAMPLE_RATE / 3600:.1f} h "
                              "(--max-duration)")


def _decoder_for(av, stream):
    """The stream's decoder: the preferred one for its codec where PyAV has it, else FFmpeg's own."""
    preferred = PREFERRED_DECODERS.get(stream.codec_context.name)
    if preferred is not None and preferred in av.codecs_available:
        context = av.CodecContext.create(preferred, "r")
        context.sample_rate = stream.codec_context.sample_rate
        context.layout = stream.codec_context.layout
        return context
    return stream.codec_context


def check_readable(path: Path) -> int:
    """The size of `path` if it is a regular file we may open; AudioMissing otherwise.

    A FIFO or device named like audio would block or never end, and a folder is not a call.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError as e:
        raise AudioMissing(f"audio file not found: {path}") from e
    except OSError as e:
        raise AudioMissing(f"cannot read {path}: {e.strerror or e}") from e
    if stat.S_ISDIR(info.st_mode):
        raise AudioMissing(f"cannot read {path}: it is a folder, not an audio file")
    if not stat.S_ISREG(info.st_mode):
        raise AudioMissing(f"cannot read {path}: not a regular file")
    return info.st_size


def audio_digest(path: Path) -> str:
    """The content hash of a call's audio; AudioMissing when it is gone or cannot be read."""
    check_readable(path)
    try:
        return file_digest(path)
    except FileNotFoundError as e:
        raise AudioMissing(f"audio file not found: {path}") from e
    except OSError as e:
        raise AudioMissing(f"cannot read {path}: {e.strerror or e}") from e


def is_silent(audio: DecodedAudio, peak_below: float = SILENCE_PEAK) -> bool:
    """True when no channel ever rises above `peak_below` (default about -60 dBFS)."""
    if audio.peak is not None:
        return audio.peak < peak_below
    from qa_pipeline.audio.stream import peak

    return all(peak(ch) < peak_below for ch in audio.channels)


def _short(e: BaseException) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
