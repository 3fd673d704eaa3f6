"""The customer's request: what they said first that says why they called.

The first REQUEST_TURNS substantive customer turns (6+ spoken characters, not mostly digits: an
account number answers a question, it does not state a reason) among their first LOOK_AT turns. Its clauses'
vectors (customer_text) are what pinned reasons are compared with; their mean, made unit length, is
what requests are grouped by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa_pipeline.customer_text import CustomerClauses, unit_mean
from qa_pipeline.records import CallTranscript

LOOK_AT = 4
MIN_CHARS = 6
MAX_DIGIT_SHARE = 0.4
DIGITS = set("0123456789０１２３４５６７８９零〇一二三四五六七八九幺两")


REQUEST_TURNS = 2


@dataclass(frozen=True)
class Request:
    turns: tuple[int, ...]  # indices among the customer's turns; (): nothing substantive said
    text: str
    at: float | None


def substantive(text: str) -> bool:
    spoken = [ch for ch in text if ch.isalnum()]
    return len(spoken) >= MIN_CHARS and sum(ch in DIGITS for ch in spoken) <= MAX_DIGIT_SHARE * len(spoken)


def customer_request(transcript: CallTranscript, customer: CustomerClauses) -> Request:
    turns = tuple(k for k, row in enumerate(customer.rows[:LOOK_AT])
                  if substantive(transcript.utterances[row].text))[:REQUEST_TURNS]
    if not turns:
        return Request((), "", None)
    texts = [transcript.utterances[customer.rows[k]].text for k in turns]
    return Request(turns, " / ".join(texts), transcript.utterances[customer.rows[turns[0]]].start)


def request_vectors(customer: CustomerClauses, request: Request) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(the request's clause vectors, their unit mean); (None, None) when there is no request."""
    if not request.turns:
        return None, None
    clauses = np.vstack([customer.of_turn(k) for k in request.turns])
    mean = unit_mean(clauses)
    return (clauses, mean) if mean is not None else (None, None)
