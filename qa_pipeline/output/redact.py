"""Mask customers' personal data in text shown to people (HTML reports).

``mask_pii`` replaces, with a readable token of the kind found:

- mobile numbers (11 digits, 1[3-9]…, optionally after +86/0086) → ``［手机号］``
- landline numbers (0 + area code, 10–12 digits; or 7–8 digits right after 电话/座机/号码…)
  → ``［电话］``
- ID card numbers (18 characters, the last may be X; spoken 叉) → ``［身份证号］``
- bank card numbers (16–19 digits) → ``［银行卡号］``
- any other run of 7+ digits right after a word that announces personal data (手机, 身份证,
  卡号…), since Whisper often drops or doubles a digit → the token of that kind; any unclaimed
  single run of 11+ digits → ``［号码］``
- a spoken address after 地址是 / 住址 / 住在 / 家住: the rest of the clause → ``［地址］``

Digits may be Arabic, full-width or Chinese digit-by-digit readings (零〇一二三四五六七八九, 幺 for
一, 两 for 二), and a number may be split by spaces, commas or dashes the way Whisper writes
"139,0572,8846".  Quantities read with 十/百/千 (九点到十二点, 三百块) are not digit runs, and runs
shorter than 7 digits (times, prices, a 4-digit 工号) are never masked.
"""

from __future__ import annotations

import re

TOKEN_MOBILE = "［手机号］"
TOKEN_LANDLINE = "［电话］"
TOKEN_ID = "［身份证号］"
TOKEN_BANK = "［银行卡号］"
TOKEN_NUMBER = "［号码］"
TOKEN_ADDRESS = "［地址］"

_DIGITS = {
    **{c: str(i) for i, c in enumerate("0123456789")},
    **{c: str(i) for i, c in enumerate("０１２３４５６７８９")},
    **{c: str(i) for i, c in enumerate("零一二三四五六七八九")},
    "〇": "0",
    "幺": "1",
    "两": "2",
}
_DIGIT_CLASS = "0-9０-９零〇一二三四五六七八九幺两"
_GROUP = rf"[+＋]?[{_DIGIT_CLASS}]+[Xx×Ｘｘ叉]?"
_SEP = r"[ \t\u3000,，\-－–—、]{1,3}"
_RUN = re.compile(rf"{_GROUP}(?:{_SEP}{_GROUP})*")
_GROUP_RE = re.compile(_GROUP)

_CONTEXT_WINDOW = 10
_CONTEXTS = (
    (re.compile(r"身份证|证件"), TOKEN_ID),
    (re.compile(r"卡号|银行卡|信用卡|储蓄卡|借记卡|账号|帐号"), TOKEN_BANK),
    (re.compile(r"座机|固话|固定电话"), TOKEN_LANDLINE),
    (re.compile(r"手机|电话|号码|联系方式"), TOKEN_MOBILE),
)

_ADDRESS = re.compile(
    r"(?P<lead>地址是|地址在|地址为|住址是|住址在|住址|地址[:：]|住在|家住)"
    r"(?P<gap>[\s:：,，]*)"
    r"(?P<body>[^，。！？；,.!?;、\n]+)"
)


def _digits(group: str) -> str:
    """The digit string of one group: '+' dropped, X-like characters read as 'X'."""
    out = []
    for ch in group:
        if ch in _DIGITS:
            out.append(_DIGITS[ch])
        elif ch in "Xx×Ｘｘ叉":
            out.append("X")
    return "".join(out)


def _context_token(context: str) -> str | None:
    for pattern, token in _CONTEXTS:
        if pattern.search(context):
            return token
    return None


def classify_number(digits: str, context: str = "") -> str | None:
    """The mask token for a spoken/written number, or None if it is not personal data.

    ``digits`` is the number as 0-9 (and a final X); ``context`` the text just before it.
    """
    plain = digits.isdigit()
    if plain and len(digits) == 13 and re.fullmatch(r"861[3-9]\d{9}", digits):
        return TOKEN_MOBILE
    if plain and len(digits) == 15 and re.fullmatch(r"00861[3-9]\d{9}", digits):
        return TOKEN_MOBILE
    if plain and len(digits) == 11 and re.fullmatch(r"1[3-9]\d{9}", digits):
        return TOKEN_MOBILE
    if re.fullmatch(r"\d{17}[\dX]", digits):
        return TOKEN_ID if not plain or _context_token(context) != TOKEN_BANK else TOKEN_BANK
    if plain and 16 <= len(digits) <= 19:
        return TOKEN_BANK
    if plain and 10 <= len(digits) <= 12 and digits.startswith("0") and not digits.startswith("00"):
        return TOKEN_LANDLINE
    hint = _context_token(context)
    if plain and 7 <= len(digits) <= 8 and hint in (TOKEN_LANDLINE, TOKEN_MOBILE):
        return TOKEN_LANDLINE
    if len(digits) >= 7 and hint is not None:
        return hint
    return None


def _mask_run(text: str, run: re.Match[str]) -> list[tuple[int, int, str]]:
    """Spans (start, end, token) to mask inside one run of digit groups.

    Groups joined by separators may be one number ("139,0572,8846") or several ("工号1001，
    13905728846"), so take, from the left, the longest stretch of consecutive groups that
    classifies as personal data.
    """
    groups = [(run.start() + m.start(), run.start() + m.end()) for m in _GROUP_RE.finditer(run.group())]
    digits = [_digits(text[a:b]) for a, b in groups]
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(groups):
        found: tuple[int, str] | None = None
        for j in range(len(groups) - 1, i - 1, -1):
            joined = "".join(digits[i : j + 1])
            if len(joined) < 7:
                break  # shorter stretches are shorter still
            context = text[max(0, groups[i][0] - _CONTEXT_WINDOW) : groups[i][0]]
            token = classify_number(joined, context)
            if token is not None:
                found = (j, token)
                break
        if found is not None:
            j, token = found
            spans.append((groups[i][0], groups[j][1], token))
            i = j + 1
            continue
        if len(digits[i]) >= 11:
            spans.append((groups[i][0], groups[i][1], TOKEN_NUMBER))
        i += 1
    return spans


def _mask_numbers(text: str) -> str:
    spans: list[tuple[int, int, str]] = []
    for run in _RUN.finditer(text):
        spans.extend(_mask_run(text, run))
    for start, end, token in reversed(spans):
        text = text[:start] + token + text[end:]
    return text


def _mask_addresses(text: str) -> str:
    return _ADDRESS.sub(lambda m: m.group("lead") + m.group("gap") + TOKEN_ADDRESS, text)


def mask_pii(text: str) -> str:
    """``text`` with customer phone, ID card and bank card numbers and spoken addresses masked."""
    if not text:
        return text
    return _mask_numbers(_mask_addresses(text))
