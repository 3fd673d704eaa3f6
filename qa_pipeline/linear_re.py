"""Regular expressions that come from users (rubric phrases, --name-pattern) run on RE2.

RE2 (google-re2) matches in time linear in the text whatever the pattern, so no rubric and no
file-name pattern can hang a batch.  What it cannot run in linear time (backreferences,
lookahead, lookbehind) is refused up front with a ValueError.  In RE2, \\d and \\w are ASCII;
\\p{Han} is a Chinese character.
"""

from __future__ import annotations

from functools import lru_cache

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the ValueError says it; RE2 would also print to stderr


@lru_cache(maxsize=1024)
def compile_regex(pattern: str):
    """``pattern`` compiled with RE2 (``re``-like API: search, match, finditer, groupdict);
    ValueError naming what RE2 refuses."""
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as e:
        why = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ValueError(f"bad regular expression {pattern!r}: {why} "
                         "(RE2 syntax: no backreferences, lookahead or lookbehind)") from None
