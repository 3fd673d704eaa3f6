"""Write the AMR fixtures of tests/data/amr/ from a real mono call (tests/data/calls/dev_11.wav):

- ``dev_11.dtx.amr``: AMR-NB 12.2 kbit/s with DTX on, as `sox -t amr-nb` writes it (and many phone
  recorders): the comfort-noise frames FFmpeg's own decoder cannot decode;
- ``dev_11.amr``: AMR-NB 12.2 kbit/s, DTX off (PyAV's OpenCORE encoder);
- ``dev_11.awb``: AMR-WB 12.65 kbit/s of the call at 16 kHz (VisualOn's encoder, libvo-amrwbenc0,
  through ctypes: neither sox nor this FFmpeg build encodes AMR-WB).

Needs sox with AMR-NB and the libvo-amrwbenc0 package (apt). Run from the repository root:

    .venv/bin/python tools/make_amr_fixtures.py
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WB_MODE = 2  # 12.65 kbit/s
WB_FRAME = 320  # samples of 16 kHz audio per 20 ms frame


def read_mono(path: Path, rate: int) -> np.ndarray:
    """The call as int16 samples at `rate`."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        frames = [out.to_ndarray()[0] for frame in container.decode(audio=0) for out in resampler.resample(frame)]
        frames += [out.to_ndarray()[0] for out in resampler.resample(None)]
    return np.concatenate(frames).astype(np.int16)


def amr_nb_dtx(source: Path, target: Path) -> None:
    subprocess.run(["sox", str(source), "-t", "amr-nb", "-C", "7", str(target)], check=True)


def amr_nb(source: Path, target: Path) -> None:
    samples = read_mono(source, 8000)
    with av.open(str(target), mode="w", format="amr") as out:
        stream = out.add_stream("libopencore_amrnb", rate=8000, layout="mono")
        stream.bit_rate = 12200
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def amr_wb(source: Path, target: Path) -> None:
    name = ctypes.util.find_library("vo-amrwbenc") or "libvo-amrwbenc.so.0"
    lib = ctypes.CDLL(name)
    lib.E_IF_init.restype = ctypes.c_void_p
    lib.E_IF_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_short),
                                ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int]
    lib.E_IF_exit.argtypes = [ctypes.c_void_p]
    samples = read_mono(source, 16000)
    samples = np.concatenate([samples, np.zeros(-len(samples) % WB_FRAME, np.int16)])
    state = lib.E_IF_init()
    out = bytearray(b"#!AMR-WB\n")
    buffer = (ctypes.c_ubyte * 64)()
    try:
        for start in range(0, len(samples), WB_FRAME):
            frame = np.ascontiguousarray(samples[start : start + WB_FRAME])
            n = lib.E_IF_encode(state, WB_MODE, frame.ctypes.data_as(ctypes.POINTER(ctypes.c_short)), buffer, 0)
            out += bytes(buffer[:n])
    finally:
        lib.E_IF_exit(state)
    target.write_bytes(bytes(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT / "tests/data/calls/dev_11.wav")
    parser.add_argument("--out", type=Path, default=ROOT / "tests/data/amr")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.source.stem
    with tempfile.TemporaryDirectory() as tmp:
        pcm = Path(tmp) / "source.wav"  # sox reads any WAV; this one is plain 8 kHz s16
        subprocess.run(["sox", str(args.source), "-r", "8000", "-c", "1", "-b", "16", str(pcm)], check=True)
        amr_nb_dtx(pcm, args.out / f"{stem}.dtx.amr")
    amr_nb(args.source, args.out / f"{stem}.amr")
    amr_wb(args.source, args.out / f"{stem}.awb")
    for path in sorted(args.out.glob(f"{stem}.*")):
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
