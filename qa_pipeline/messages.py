"""Every sentence a person reads about a verdict, in the rubric's language, from a gettext catalogue.

Scoring decides a verdict as a stable code with parameters (`Say`, e.g. `hold.no_before` with the
phrase); `render` turns it into the reader's language through GNU gettext catalogues compiled from
qa_pipeline/locale/<lang>/LC_MESSAGES/qa_pipeline.po (msgid = the code, msgstr = the sentence with
{named} placeholders).  The code is kept beside the text (Parquet `reason_code`), so a report or a
query can group verdicts whatever language they were written in.  Edit a .po file, then
`python tools/compile_messages.py` (Babel) to rebuild its .mo.
"""

from __future__ import annotations

import gettext
import importlib.resources
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DOMAIN = "qa_pipeline"
LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class Say:
    """One sentence of a reason: a catalogue code and its parameters (already formatted values)."""

    code: str
    params: tuple[tuple[str, str], ...] = ()


def say(code: str, **params: object) -> Say:
    return Say(code, tuple((k, str(v)) for k, v in params.items()))


def locale_dir() -> Path:
    return Path(str(importlib.resources.files("qa_pipeline") / "locale"))


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of `language` (ValueError naming the ones there are)."""
    if language not in LANGUAGES:
        raise ValueError(f"no message catalogue for language {language!r} (available: {', '.join(LANGUAGES)})")
    return gettext.translation(DOMAIN, localedir=str(locale_dir()), languages=[language])


def text(language: str, code: str, **params: object) -> str:
    """The catalogue's sentence for `code`, filled in; KeyError if the catalogue lacks it."""
    template = catalogue(language).gettext(code)
    if template == code:
        raise KeyError(f"message {code!r} missing from the {language} catalogue")
    return template.format(**params)


def render(language: str, parts: tuple[Say, ...] | list[Say]) -> str:
    """Sentences joined with the language's clause separator."""
    sep = text(language, "sep.clause")
    return sep.join(text(language, s.code, **dict(s.params)) for s in parts)


def word(language: str, code: str) -> str:
    """A single word from the catalogue (speaker names, match methods)."""
    return text(language, code)
