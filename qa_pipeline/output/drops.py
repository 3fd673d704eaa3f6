"""Why a piece of transcript was dropped, in the reader's language.

The guards record their reason as a plain English line (the Parquet keeps it as written, for logs
and queries); a page shows it through the message catalogue. A reason no pattern knows is shown as
it was written.
"""

from __future__ import annotations

import re

from qa_pipeline import messages

# What asr/guards.py and speakers/roles.py write, by the start of the line.
_REASONS = (
    (re.compile(r"empty text"), "drop.empty"),
    (re.compile(r"known subtitle boilerplate"), "drop.boilerplate"),
    (re.compile(r"likely silence"), "drop.silence"),
    (re.compile(r"repetition loop"), "drop.loop"),
    (re.compile(r"repetitive text"), "drop.repetitive"),
    (re.compile(r"repeated across segments \((?P<n>\d+)x"), "drop.repeated"),
    (re.compile(r"channel bleed \((?P<db>-?\d+) dB"), "drop.bleed"),
    (re.compile(r"noise-like audio \((?P<db>-?\d+) dB"), "drop.noise"),
    (re.compile(r"line echo \(the other channel (?P<db>-?\d+) dB down, (?P<ms>\d+) ms late"), "drop.echo"),
    (re.compile(r"unsure words over the other channel's speech \((?P<share>\d+%) of it, word probability (?P<prob>[\d.]+)"),
     "drop.over_other"),
)


def drop_reason(reason: str, language: str = "zh") -> str:
    """The guard's `reason` as a reader of `language` reads it."""
    for pattern, code in _REASONS:
        found = pattern.match(reason)
        if found:
            return messages.text(language, code, **found.groupdict())
    return reason
