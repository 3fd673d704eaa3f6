"""Mask customers' personal data in text shown to people (HTML reports).

Numbers are masked over the whole call, not one line at a time: Whisper often splits a number
a customer dictates over two or three utterances ("请号是0571" / "5938" / "1260"), and the agent
reads it back in pieces.  :class:`CallRedactor` therefore follows each speaker's digit stream
across their consecutive utterances (whatever the other side says in between), and masks, in
every text of the call's page (bubbles, evidence quotes, reasons, errors):

- mobile numbers (11 digits, 1[3-9]…, optionally after +86/0086) → ``［手机号］``
- landline numbers (0 + area code, 10–12 digits; or 7–8 digits right after 电话/座机/号码…)
  → ``［电话］``
- ID card numbers (18 characters, the last may be X; spoken 叉) → ``［身份证号］``
- bank card numbers (16–19 digits) → ``［银行卡号］``
- any other run of 7+ digits after a word that announces personal data (手机, 身份证, 卡号…) →
  the token of that kind; any other run of 7+ digits at all (a number with a digit missing, with
  no cue word) → ``［号码］``
- every piece of 3+ digits of a number masked anywhere in the call, wherever else in the call it
  appears (the agent's "尾号8846", an evidence quote cut in the middle of a number, a reason that
  quotes the digits)
- a spoken address after 地址是 / 住址 / 住在 / 家住: the rest of the clause → ``［地址］``; and an
  address by its shape, without a cue word: (…省…市…区…) …路/街/巷/弄/胡同/大道 + a number + 号
  (+ 栋/单元/室 …), or …小区/花园/公寓/大厦/新村/苑 + a number + 栋/幢/号楼 → ``［地址］``
- an order, waybill or ticket number mixing letters and digits (SF1234AB5678: 8+ characters, 5+
  digits) → ``［单号］``

A run is a sequence of digit groups joined by separators (spaces, commas, dots, 、, 。, dashes, and
the fillers 呃 / 额 / 嗯 / 啊 / 唔 / 那个 that people say while reading a number out) or by the end
of one utterance and the start of the same speaker's next.  Digits may be Arabic, full-width, or
Chinese digit-by-digit readings (零〇一二三四五六七八九, 幺 for 一, 两 for 二, 洞 for 零), mixed in one
number; an ID card's final X may be written X, 叉 or 艾克斯.  Whisper writes spoken digit groups
with dots and commas (137.1234.5678, 3301.062,198.7): a dot joins groups like a comma does.

Not masked, on purpose, so the pages stay useful: runs of 6 digits or fewer (times, prices, a
4-digit 工号), quantities written with their unit (12.5 s, 233.2-236.4 秒, 12,800 元, 100%),
quantities read with 十/百/千 (九点到十二点, 三百块), and calendar dates written 2025-03-03 (or with
/ or .).

A call_id that holds a phone, ID-card or bank-card number by its shape (a recorder that names its
files after the caller) is shown with that number masked and 6 letters made from the id, so that
calls stay apart (:func:`mask_id`); other ids are shown as they are.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

TOKEN_MOBILE = "［手机号］"
TOKEN_LANDLINE = "［电话］"
TOKEN_ID = "［身份证号］"
TOKEN_BANK = "［银行卡号］"
TOKEN_NUMBER = "［号码］"
TOKEN_ADDRESS = "［地址］"
TOKEN_ORDER = "［单号］"

MIN_RUN = 7  # digits in a run that is always masked
MIN_PIECE = 3  # digits of a piece of a masked number that is masked elsewhere in the call

DIGIT_CHARS = "0123456789０１２３４５６７８９零〇一二三四五六七八九幺两洞"
_DIGITS = {
    **{c: str(i) for i, c in enumerate("0123456789")},
    **{c: str(i) for i, c in enumerate("０１２３４５６７８９")},
    **{c: str(i) for i, c in enumerate("零一二三四五六七八九")},
    "〇": "0",
    "洞": "0",
    "幺": "1",
    "两": "2",
}
_X = "Xx×Ｘｘ叉"
_X_SPOKEN = ("艾克斯", "爱克斯", "埃克斯")  # an ID card's X, as Whisper writes it heard
SEPARATOR_CHARS = " \t\u3000\u00a0,，、。.．-－–—"
FILLERS = ("呃", "额", "嗯", "啊", "唔", "那个")  # said while reading a number out: 135呃2468呃9753
_SEP_CLASS = re.escape(SEPARATOR_CHARS)
_FILLER_ALT = "|".join(FILLERS)
_GROUP_RE = re.compile(rf"[+＋]?[{DIGIT_CHARS}]+(?:[{_X}]|{'|'.join(_X_SPOKEN)})?")
_SEP_RE = re.compile(rf"(?:[{_SEP_CLASS}]|{_FILLER_ALT}){{1,3}}")
# what may stand between a number and the edge of its utterance for it to go on in the next one
_EDGE_RE = re.compile(rf"(?:[\s{_SEP_CLASS}?？!！:：;；…~～\"'“”‘’()（）]|{_FILLER_ALT})*")
_DATE_RE = re.compile(
    r"(?<![0-9０-９])(?:19|20)[0-9]{2}([-/－.])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12][0-9]|3[01])(?![0-9０-９])"
)
# a quantity with its unit (233.2-236.4 秒, 12.5 s, 12,800 元, 100%): not a number, whatever its dots
_QUANTITY_RE = re.compile(
    r"[0-9０-９]+(?:[,，][0-9]{3})*(?:[.．][0-9]+)?(?:\s*[-–~～至到]\s*[0-9０-９]+(?:[,，][0-9]{3})*(?:[.．][0-9]+)?)?"
    r"\s*(?:秒|毫秒|分钟|小时|元|块|米|公里|度|[%％]|(?:s|ms|dB|min|h)(?![A-Za-z]))"
)
# letters and digits mixed: 8+ characters, at least one letter and five digits (SF1234AB5678)
_ORDER_RE = re.compile(r"(?<![A-Za-z0-9])(?![0-9]+[Xx](?![A-Za-z0-9]))"  # not an ID card number's final X
                       r"(?=[A-Za-z0-9-]*[A-Za-z])(?=(?:[A-Za-z-]*[0-9]){5})"
                       r"[A-Za-z0-9][A-Za-z0-9-]{6,}[A-Za-z0-9](?![A-Za-z0-9])")
_LATIN = re.compile(r"[A-Za-z]")

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
_HAN = r"\u4e00-\u9fa5"
_NUM = r"0-9０-９零〇一二三四五六七八九十百千幺两洞"
_UNIT = rf"(?:[{_NUM}]{{1,5}}[-－]?(?:号院|号楼|栋|幢|单元|楼|层|室|号|户)|[A-Za-z]座)"
# an address by its shape, no cue word needed: (…省…市…区…) a road + a number + 号, or an estate + a building
_PLACE = rf"(?:(?![我你您他她在是的住家到去])[{_HAN}])"  # a place name's character, not a word before it
_ADDRESS_SHAPE = re.compile(
    rf"(?:{_PLACE}{{1,8}}?(?:省|自治区|市|州|区|县|镇|乡|街道))*"
    rf"(?:(?:{_PLACE}|[{_NUM}]){{1,10}}?(?:路|街|巷|弄|胡同|大道)[{_NUM}]{{1,5}}[-－]?号"
    rf"|{_PLACE}{{1,10}}?(?:小区|花园|公寓|大厦|新村|苑)[{_NUM}]{{1,4}}(?:栋|幢|号楼))"
    rf"{_UNIT}*"
)

# what every match of _ADDRESS / _ADDRESS_SHAPE holds: a text without it has no address of that kind
_ADDRESS_LEAD = re.compile(r"地址|住址|住在|家住")
_ADDRESS_CORE = re.compile(rf"(?:路|街|巷|弄|胡同|大道)[{_NUM}]{{1,5}}[-－]?号|(?:小区|花园|公寓|大厦|新村|苑)[{_NUM}]{{1,4}}(?:栋|幢|号楼)")


@lru_cache(maxsize=8192)
def digits_of(group: str) -> str:
    """The digit string of one group: '+' dropped, X-like characters (and 艾克斯) read as 'X'."""
    for spoken in _X_SPOKEN:
        group = group.replace(spoken, "X")
    out = []
    for ch in group:
        if ch in _DIGITS:
            out.append(_DIGITS[ch])
        elif ch in _X:
            out.append("X")
    return "".join(out)


def _context_token(context: str) -> str | None:
    for pattern, token in _CONTEXTS:
        if pattern.search(context):
            return token
    return None


def classify_number(digits: str, context: str = "") -> str | None:
    """The mask token for a spoken/written number, or None if it is not personal data by its shape.

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
    if len(digits) >= MIN_RUN and hint is not None:
        return hint
    return None


@dataclass(frozen=True)
class _Group:
    text: int  # which text of the call
    start: int
    end: int
    digits: str


def _groups(text: str, k: int) -> list[_Group]:
    return [_Group(k, start, end, digits) for start, end, digits in _group_spans(text)]


@lru_cache(maxsize=4096)
def _group_spans(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, digits) of each digit group of ``text`` outside dates and quantities; remembered,
    as a card looks for the groups of the same text more than once (masked alone, then its pieces)."""
    found = list(_GROUP_RE.finditer(text))
    if not found:
        return ()
    dates = [m.span() for m in _DATE_RE.finditer(text)] + [m.span() for m in _QUANTITY_RE.finditer(text)]
    if dates:
        found = [m for m in found if not any(a <= m.start() < b for a, b in dates)]
    return tuple((m.start(), m.end(), digits_of(m.group())) for m in found)


def _joined(texts: Sequence[str], a: _Group, b: _Group) -> bool:
    """Whether group ``b`` goes on the number that ``a`` began."""
    if a.text == b.text:
        return _SEP_RE.fullmatch(texts[a.text][a.end : b.start]) is not None
    return (_EDGE_RE.fullmatch(texts[a.text][a.end :]) is not None
            and _EDGE_RE.fullmatch(texts[b.text][: b.start]) is not None)


def _runs(texts: Sequence[str], speakers: Sequence[str], order: Sequence[int]) -> list[list[_Group]]:
    """Every run of joined digit groups: within a text, and across a speaker's consecutive texts
    (taken in ``order``)."""
    last: dict[str, list[_Group]] = {}  # speaker → the run their previous text ended with
    runs: list[list[_Group]] = []
    for k in order:
        text, speaker = texts[k], speakers[k]
        groups = _groups(text, k) if text else []
        if not groups:
            if text and text.strip():
                last.pop(speaker, None)  # words without digits end the speaker's number
            continue
        current = last.get(speaker)
        if current is None or not _joined(texts, current[-1], groups[0]):
            current = []
            runs.append(current)
        current.append(groups[0])
        for g in groups[1:]:
            if not _joined(texts, current[-1], g):
                current = []
                runs.append(current)
            current.append(g)
        if _EDGE_RE.fullmatch(text[groups[-1].end :]):
            last[speaker] = current
        else:
            last.pop(speaker, None)
    return runs


def _stretches(texts: Sequence[str], run: list[_Group]) -> list[tuple[list[_Group], str]]:
    """The stretches of ``run`` to mask, each with its token.

    Groups joined by separators may be one number ("139,0572,8846") or several ("工号1001，
    13905728846"), so take, from the left, the longest stretch of consecutive groups that
    classifies as personal data; what is left over is masked where it still holds 7+ digits.
    """
    if sum(len(g.digits) for g in run) < MIN_RUN:
        return []  # nothing in it is long enough to mask
    out: list[tuple[list[_Group], str]] = []
    leftover: list[_Group] = []

    def flush() -> None:
        if sum(len(g.digits) for g in leftover) >= MIN_RUN:
            out.append((list(leftover), TOKEN_NUMBER))
        leftover.clear()

    i = 0
    while i < len(run):
        found: tuple[int, str] | None = None
        head = run[i]
        context = texts[head.text][max(0, head.start - _CONTEXT_WINDOW) : head.start]
        for j in range(len(run) - 1, i - 1, -1):
            joined = "".join(g.digits for g in run[i : j + 1])
            if len(joined) < MIN_RUN:
                break  # shorter stretches are shorter still
            token = classify_number(joined, context)
            if token is not None:
                found = (j, token)
                break
        if found is None:
            leftover.append(head)
            i += 1
            continue
        flush()
        j, token = found
        out.append((run[i : j + 1], token))
        i = j + 1
    flush()
    return out


def _replace(text: str, spans: Iterable[tuple[int, int, str]]) -> str:
    for start, end, token in sorted(spans, reverse=True):
        text = text[:start] + token + text[end:]
    return text


def _mask_addresses(text: str) -> str:
    if _ADDRESS_LEAD.search(text):
        text = _ADDRESS.sub(lambda m: m.group("lead") + m.group("gap") + TOKEN_ADDRESS, text)
    if _ADDRESS_CORE.search(text):
        text = _ADDRESS_SHAPE.sub(TOKEN_ADDRESS, text)
    return text


def _mask_orders(text: str, secrets: list[tuple[str, str]]) -> str:
    """Order numbers mixing letters and digits → TOKEN_ORDER; their digit groups are kept in
    ``secrets``, so that a piece read out elsewhere in the call is masked too."""
    def token(m: re.Match) -> str:
        secrets.extend((digits, TOKEN_ORDER) for digits in re.findall(r"[0-9]{3,}", m.group()))
        return TOKEN_ORDER

    if not _LATIN.search(text):
        return text  # an order number holds a letter
    return _ORDER_RE.sub(token, text)


def _is_decimal_part(text: str, start: int, end: int) -> bool:
    """'12.5': digits on either side of a '.' are a quantity, never a piece of a number."""
    return (end < len(text) - 1 and text[end] in ".．" and text[end + 1].isdigit()) or (
        start > 1 and text[start - 1] in ".．" and text[start - 2].isdigit()
    )


class CallRedactor:
    """Masks every text of one call, knowing the numbers its speakers said across utterances.

    ``utterances`` are (speaker, text), in time order unless ``order`` gives each one's start
    time; :meth:`utterance` gives each one masked, and :meth:`__call__` masks any other text of
    the call (evidence, reasons, errors).
    """

    def __init__(self, utterances: Sequence[tuple[str | None, str]] = (),
                 order: Sequence[float] | None = None) -> None:
        secrets: list[tuple[str, str]] = []
        texts = [_mask_orders(_mask_addresses(text or ""), secrets) for _speaker, text in utterances]
        speakers = [speaker or "" for speaker, _text in utterances]
        spans: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        sequence = sorted(range(len(texts)), key=lambda k: order[k]) if order is not None else range(len(texts))
        for run in _runs(texts, speakers, sequence):
            for stretch, token in _stretches(texts, run):
                secrets.append(("".join(g.digits for g in stretch), token))
                for k in dict.fromkeys(g.text for g in stretch):
                    mine = [g for g in stretch if g.text == k]
                    spans[k].append((mine[0].start, mine[-1].end, token))
        self._secrets = tuple(secrets)
        self._masked = [self._pieces(_replace(text, s)) for text, s in zip(texts, spans)]

    def utterance(self, k: int) -> str:
        """The ``k``-th utterance given to the constructor, masked."""
        return self._masked[k]

    def __call__(self, text: str | None) -> str:
        """Any text of this call masked: its own numbers and addresses, and pieces of the call's."""
        if not text:
            return ""
        return self._pieces(_masked_alone(text))

    def _pieces(self, text: str) -> str:
        if not self._secrets:
            return text
        spans = []
        for start, end, digits in _group_spans(text):
            digits = digits.lstrip("+")
            if len(digits) < MIN_PIECE or _is_decimal_part(text, start, end):
                continue
            token = next((t for secret, t in self._secrets if digits in secret), None)
            if token is not None:
                spans.append((start, end, token))
        return _replace(text, spans)


@lru_cache(maxsize=65536)
def mask_id(call_id: str) -> str:
    """A call_id as a page shows it: a phone, ID-card or bank-card number in it (by its shape)
    replaced by its token, then 6 letters made from the whole id (no digits: they would make a
    number again), so that two such calls stay apart; any other id as it is."""
    runs = _runs([call_id], [""], [0])
    spans = [(stretch[0].start, stretch[-1].end, token) for run in runs
             for stretch, token in _stretches([call_id], run) if token != TOKEN_NUMBER]
    if not spans:
        return call_id
    digest = hashlib.sha1(call_id.encode("utf-8", "surrogatepass")).digest()
    return f"{_replace(call_id, spans)}·{''.join(chr(ord('a') + b % 26) for b in digest[:6])}"


def mask_pii(text: str) -> str:
    """``text`` with customer phone, ID card and bank card numbers and spoken addresses masked."""
    if not text:
        return text
    return _masked_alone(text)


@lru_cache(maxsize=65536)
def _masked_alone(text: str) -> str:
    """``text`` masked on its own: a pure function of it, remembered (a page masks the same item
    names, reasons and quotes again and again)."""
    if (sum(len(digits) for _start, _end, digits in _group_spans(text)) < MIN_RUN
            and not _LATIN.search(text) and not _ADDRESS_LEAD.search(text) and not _ADDRESS_CORE.search(text)):
        return text  # no number long enough, no address, no order number: nothing to mask
    return CallRedactor([("", text)]).utterance(0)
