"""Agreement between two raters of pass / fail / n/a verdicts: confusion matrix, agreement,
precision and recall of `fail`, Cohen's κ. Pure functions over (first rater, second rater) pairs.

Cohen's κ (Cohen 1960): κ = (p_o − p_e) / (1 − p_e), p_o the observed agreement, p_e the agreement
expected by chance from each rater's own marginals. It is undefined (None) when p_e = 1, i.e. both
raters gave one and the same verdict every time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from qa_pipeline.records import FAIL, NA, PASS, Agreement

VERDICTS = (PASS, FAIL, NA)


def confusion_matrix(pairs: Iterable[tuple[str, str]], labels: Sequence[str] = VERDICTS) -> tuple[tuple[int, ...], ...]:
    """Counts of (first, second) over `labels` × `labels`; a verdict outside `labels` is a ValueError."""
    index = {v: k for k, v in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for first, second in pairs:
        if first not in index or second not in index:
            raise ValueError(f"verdict not one of {', '.join(labels)}: {first if first not in index else second!r}")
        counts[index[first]][index[second]] += 1
    return tuple(tuple(row) for row in counts)


def cohen_kappa(confusion: Sequence[Sequence[int]]) -> float | None:
    """Cohen's κ of a square confusion matrix; None when it is undefined (no pairs, or p_e = 1)."""
    n = sum(sum(row) for row in confusion)
    if n == 0:
        return None
    k = len(confusion)
    observed = sum(confusion[i][i] for i in range(k)) / n
    rows = [sum(confusion[i]) / n for i in range(k)]
    cols = [sum(confusion[i][j] for i in range(k)) / n for j in range(k)]
    expected = sum(r * c for r, c in zip(rows, cols))
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def agreement(pairs: Iterable[tuple[str, str]]) -> Agreement:
    """Agreement, κ and fail precision/recall of (first, second) verdict pairs."""
    confusion = confusion_matrix(list(pairs))
    n = sum(sum(row) for row in confusion)
    agree = sum(confusion[i][i] for i in range(len(VERDICTS)))
    f = VERDICTS.index(FAIL)
    both_fail = confusion[f][f]
    second_fail = sum(confusion[i][f] for i in range(len(VERDICTS)))
    first_fail = sum(confusion[f])
    return Agreement(
        n=n,
        agree=agree,
        confusion=confusion,
        kappa=cohen_kappa(confusion),
        fail_precision=both_fail / second_fail if second_fail else None,
        fail_recall=both_fail / first_fail if first_fail else None,
    )
