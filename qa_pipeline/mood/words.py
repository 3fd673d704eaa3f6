"""The word side of the customer's mood: the complaint classifier, and how close a turn is to
frustrated rather than calm example sentences (the sentence encoder).

Both sit behind the two functions here, so a better classifier or encoder can take their place
without touching the rest of the mood stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qa_pipeline.scoring.intents import load_model


def complaint_probability(text: str) -> float:
    """P(complaint | utterance), by the bundled classifier (scoring.intents)."""
    return load_model().probability("complaint", text)


class ExampleSimilarity:
    """How much closer a text is to the frustrated examples than to the calm ones: the cosine of its
    nearest frustrated example minus that of its nearest calm one (vectors of unit length)."""

    def __init__(self, frustrated: np.ndarray, calm: np.ndarray) -> None:
        self.frustrated = np.asarray(frustrated, dtype=np.float32)
        self.calm = np.asarray(calm, dtype=np.float32)

    @classmethod
    def from_examples(cls, embeddings, frustrated: Sequence[str], calm: Sequence[str]) -> ExampleSimilarity:
        """`embeddings`: an EmbeddingCache (meaning.cache); the examples are one canonical batch."""
        vectors = embeddings.vectors(list(frustrated) + list(calm))
        return cls(vectors[: len(frustrated)], vectors[len(frustrated):])

    def margins(self, vectors: np.ndarray) -> np.ndarray:
        """One margin per row of `vectors`."""
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.float32)
        return (vectors @ self.frustrated.T).max(axis=1) - (vectors @ self.calm.T).max(axis=1)
