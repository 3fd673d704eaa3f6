"""The sample calls shipped with the package for `qa demo`."""

from pathlib import Path


def demo_dir() -> Path:
    """Folder holding the demo recordings and their manifest.csv."""
    return Path(__file__).resolve().parent / "demo_calls"
