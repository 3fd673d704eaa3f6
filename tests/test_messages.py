"""The message catalogues: complete, compiled, and used by every reason the scorer writes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from qa_pipeline import messages

ROOT = Path(__file__).resolve().parent.parent


def _ids(language: str) -> set[str]:
    po = (ROOT / "qa_pipeline" / "locale" / language / "LC_MESSAGES" / "qa_pipeline.po").read_text(encoding="utf-8")
    return {m for m in re.findall(r'^msgid "(.+)"$', po, flags=re.M)}


def _codes_in_source() -> set[str]:
    paths = [*(ROOT / "qa_pipeline" / "scoring").rglob("*.py"), ROOT / "qa_pipeline" / "output" / "drops.py"]
    src = "".join(path.read_text(encoding="utf-8") for path in paths)
    literal = set(re.findall(r'"((?:sep|who|said|evidence|window|phrase|intro|confirm|hold|silence|interruption|rate|'
                             r'hangup|forbidden|trigger|when|review|drop)\.[a-z_.]+)"', src))
    return literal | {f"who.{w}" for w in ("agent", "customer", "any")} | {"hangup.agent_first", "hangup.customer_first",
                                                                          "trigger.model.complaint"}


def test_both_catalogues_have_the_same_messages():
    assert _ids("zh") == _ids("en")


def test_every_code_the_scorer_uses_is_in_the_catalogues():
    missing = _codes_in_source() - _ids("zh")
    assert not missing, missing


@pytest.mark.parametrize("language", messages.LANGUAGES)
def test_placeholders_agree_between_languages(language):
    po = {}
    for lang in messages.LANGUAGES:
        text = (ROOT / "qa_pipeline" / "locale" / lang / "LC_MESSAGES" / "qa_pipeline.po").read_text(encoding="utf-8")
        po[lang] = dict(re.findall(r'^msgid "(.+)"\nmsgstr "(.*)"$', text, flags=re.M))
    for code, template in po[language].items():
        assert set(re.findall(r"{(\w+)}", template)) == set(re.findall(r"{(\w+)}", po["en"][code])), code


def test_compiled_catalogues_are_up_to_date():
    pytest.importorskip("babel")
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "compile_messages.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_render_and_errors():
    assert messages.text("zh", "hold.none", s="7") == "没有超过 7 秒的等待"
    assert messages.text("en", "hold.none", s="7") == "no wait longer than 7 s"
    assert messages.render("zh", [messages.say("hold.none", s=7), messages.say("silence.no_speech")]) == \
        "没有超过 7 秒的等待；通话中没有语音"
    with pytest.raises(KeyError, match="nope"):
        messages.text("zh", "nope")
    with pytest.raises(ValueError, match="available: zh, en"):
        messages.text("fr", "hold.none")


def test_no_message_is_left_unused():
    assert _ids("zh") - _codes_in_source() == set()
