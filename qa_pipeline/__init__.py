"""qa-pipeline: offline quality scoring of recorded customer-service calls."""

import os

# onnxruntime (Silero VAD, CAM++ speaker embeddings) otherwise writes a device id and a telemetry
# database under ~/.cache/Microsoft/DeveloperTools/.onnxruntime the first time it runs. Nothing
# leaves the machine and nothing is written outside OUT and the cache folder (models.cache_root).
# Set on importing the package, before anything here can import onnxruntime.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
