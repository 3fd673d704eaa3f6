"""The review desk: people confirm, override and dispute the machine's verdicts (`qa review`).

Public API for other stages:

- :func:`final_call` / :func:`final_calls` — machine verdicts ⊕ decisions → final verdicts
  (the one function the desk, `qa run`, `qa score` and the reports use);
- :func:`read_labels` / :class:`Label` — decisions as labels (``qa calibrate``);
- :func:`load_policy` / :class:`Policy` — the review policy file;
- :class:`ReviewDB` — OUT/review.db (audit trail, users).

Only the batch-facing parts are imported here; the web app (Starlette, uvicorn) loads on demand.
"""

from qa_pipeline.review.db import DB_FILE, ReviewDB, open_if_exists
from qa_pipeline.final_verdicts import Event, FinalCall, FinalItem, final_call, final_calls
from qa_pipeline.review.labels import Label, read_labels
from qa_pipeline.review.policy import Policy, PolicyError, load_policy, parse_policy, policy_for

__all__ = [
    "DB_FILE",
    "Event",
    "FinalCall",
    "FinalItem",
    "Label",
    "Policy",
    "PolicyError",
    "ReviewDB",
    "final_call",
    "final_calls",
    "load_policy",
    "open_if_exists",
    "parse_policy",
    "policy_for",
    "read_labels",
]
