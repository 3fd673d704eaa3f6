"""`introduction`: the agent names the company and themselves in their opening."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from qa_pipeline.meaning.judge import CLAUSE
from qa_pipeline.records import CUSTOMER, FAIL, PASS
from qa_pipeline.scoring.checks.context import (
    DETAIL_CHARS,
    FORMULAIC,
    SLACK_S,
    Call,
    Hit,
    Seg,
    Verdict,
    alternatives,
    describe,
    hits_verdict,
    in_window,
    overlaps,
    said_at,
    searched,
    window_segs,
)
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.matching import BY_TEXT, Phrase, PreparedText, find_all, parse_phrase, prepare
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import Centre, Item, Window


@dataclass(frozen=True)
class IntroductionCheck:
    """The agent names the company and themselves.  The company: any of the centre's names and
    aliases (rubric `centre:`), a form that names one (欢迎致电 / 这里是 / 客服中心 …, `company`), or a
    word that ends an organisation's name (供电, 物业, 银行 …, `organisations`).  Themselves: `self`
    (工号, 我是, N号客服 …), or the manifest's agent id digits / 小+surname (`use_metadata`).  Both are
    looked for in the agent's opening: their words in `window` before the customer first answers."""

    company: tuple[Phrase, ...] = ()
    organisations: tuple[Phrase, ...] = ()
    self: tuple[Phrase, ...] = ()
    window: Window = Window(first_seconds=20.0)
    use_metadata: bool = True
    # a company match whose words hold one of these is not a company (the slot after 您好 may hold the
    # customer's name: 您好王先生，我是…; a question: 您好请问是…吗)
    not_company: tuple[Phrase, ...] = ()
    # the words between the greeting and the self are the company (slot_company)
    company_slot: bool = False
    type: str = "introduction"


def parse(r: RubricReader, node: yaml.Node, m: dict[str, yaml.Node], where: str, weight: float) -> IntroductionCheck:
    if not any(k in m for k in ("company", "organisations")) or "self" not in m:
        raise r.error(node, f"{where}: needs self and company or organisations")
    return IntroductionCheck(
        company=r.phrases_at(m, "company", where),
        organisations=r.phrases_at(m, "organisations", where),
        self=r.phrases_at(m, "self", where),
        window=r.window(m["window"], where) if "window" in m else Window(first_seconds=20.0),
        use_metadata=r.boolean(m["use_metadata"], f"{where}: use_metadata") if "use_metadata" in m else True,
        not_company=r.phrases_at(m, "not_company", where),
        company_slot=r.boolean(m["company_slot"], f"{where}: company_slot") if "company_slot" in m else False,
    )


def opening(call: Call, speaker: str, w: Window) -> tuple[Seg, ...]:
    """The speaker's utterances in the window up to the customer's first words that say something
    (对，我是 to an outbound agent's 请问是孙先生吗 does not end the opening)."""
    segs = window_segs(call, speaker, w)
    if not segs or call.meta.direction == "outbound":
        # outbound: the customer answers first and confirms who they are (对，我是她妈妈); the agent's
        # introduction follows, so the window alone bounds the opening
        return segs
    first = segs[0].utt.start
    replies = [s.utt.start for s in call.segs if s.utt.speaker == CUSTOMER and s.utt.start > first + SLACK_S
               and len(FORMULAIC.sub("", s.prep.norm)) >= DETAIL_CHARS]
    if replies:
        segs = tuple(s for s in segs if s.utt.start < min(replies))
    return segs


def company_phrases(call: Call) -> tuple[tuple[Phrase, ...], tuple[str, ...]]:
    """The centre's names (and aliases) for this call's company; all companies if the call's team
    or manifest company names none.  Returns (phrases, names)."""
    centre = call.rubric.centre
    if not centre.companies:
        return (), ()
    mine = [c for c in centre.companies
            if (call.meta.company and (c.name == call.meta.company or call.meta.company in c.names))
            or (call.meta.team and call.meta.team in c.teams)]
    chosen = mine or list(centre.companies)
    return tuple(p for c in chosen for p in c.aliases), tuple(c.name for c in chosen)


def self_from_meta(call: Call, segs: tuple[Seg, ...]) -> list[Hit]:
    """The agent says their id's digits or '小'+surname from the manifest."""
    wanted = []
    meta = call.meta
    if meta.agent_id:
        digits = "".join(ch for ch in meta.agent_id if ch.isdigit())
        if len(digits) >= 3:
            wanted.append(digits)
    if meta.agent_name:
        wanted.append("小" + meta.agent_name.strip()[0])
    out = []
    for want in wanted:
        for seg in segs:
            pos = seg.prep.norm.find(want)
            if pos >= 0:
                out.append(call.hit_at(seg, want, pos, pos + len(want)))
    return out


# a greeting that opens an utterance: 喂 alone too (喂，时光钟表维修，我是…), and 为 where Whisper wrote
# the opening 喂 so (为你好, 为海港物业…) — not 为您 / 为你 / 为了, which start a sentence of their own
_GREETED = re.compile(r"^(?:喂|为(?=[您你]好)|为(?![您你了])|[您你]好|早上好|上午好|中午好|下午好|晚上好)+")
_NOT_A_NAME_START = "我这是很工请欢谢小您你喂为"
SLOT_CHARS = (2, 10)
# 我是<X>的<who> frames X more firmly than a slot after the greeting: a company with its department
# (绿茵湖高尔夫俱乐部会员服务部) may be longer there
I_AM_CHARS = 14
# 我是<company>的客服小王: the company named inside the self-introduction, before a role
_I_AM = "我是"
ROLES = tuple(parse_phrase(r) for r in ("客服", "工作人员", "话务员", "顾问", "专员", "前台"))
_PEOPLE = set("您你他她")
DEPARTMENT_WORDS = ("售后", "客服", "服务", "理赔", "热线", "中心", "前台", "部", "组", "处", "科", "室")
_DOING = "负专刚上来给帮跟和在为替代"  # 负责 / 专门 / 刚才 / 上次 / 来 / 给 / 帮 …: what the agent did, not for whom


def not_company(text: str, c: IntroductionCheck) -> bool:
    p = prepare(text)
    return any(find_all(p, phrase) for phrase in c.not_company)


def slot_company(call: Call, segs: tuple[Seg, ...], selves: list[Hit], c: IntroductionCheck) -> list[Hit]:
    """The words between the greeting and the self name the company (您好，云杉口腔，我是前台小周 /
    星河保险，工号三零七): 2-10 characters, from the start of a greeted utterance or of the opening's
    first one, up to the first self hit; not a customer's name nor a question (not_company)."""
    out = []
    for k, seg in enumerate(segs):
        starts = sorted(h.match.norm_start for h in selves if h.seg.n == seg.n)
        greeted = _GREETED.match(seg.prep.norm)
        # 您好，安心家政 | 我是…: a pause split the opening before the self; so may 安心家政 | 我是… answering
        # a call (an outbound agent's first words address the customer: 王女士是吧 | 我是…)
        split = greeted is not None or (seg is segs[0] and call.meta.direction != "outbound")
        if not starts and split and k + 1 < len(segs) and any(
                h.seg.n == segs[k + 1].n and h.match.norm_start == 0 for h in selves):
            starts = [len(seg.prep.norm)]
        if not starts:
            continue
        spans = []
        if greeted is not None or seg is segs[0]:
            a, b = (greeted.end() if greeted else 0), starts[0]
            spans.append((a, b, SLOT_CHARS[1]))
            # 来了来了，疾风卡丁车前台，我是…: else the clause just before the self
            if (last := _last_clause(seg.prep, a, b)) > a:
                spans.append((last, b, SLOT_CHARS[1]))
        spans += [(a, b, I_AM_CHARS) for a, b in _before_role(seg, selves)]
        for a, b, longest in spans:
            slot = seg.prep.norm[a:b]
            if not (SLOT_CHARS[0] <= len(slot) <= longest) or not all("\u4e00" <= ch <= "\u9fff" for ch in slot):
                continue
            if slot[0] in _NOT_A_NAME_START or len(FORMULAIC.sub("", slot)) < SLOT_CHARS[0] or not_company(slot, c):
                continue  # not a name: 好的好的 | 我是… answers, it does not name anyone
            out.append(call.hit_at(seg, slot, a, b))
            break
    return out


def _last_clause(p: PreparedText, a: int, b: int) -> int:
    """Where the last clause of normalised positions a:b begins (a when the text shows no clause
    break between them): the first position after the last break of the original text before b —
    the meaning layer's clauses (judge.CLAUSE), whose breaks are punctuation and spaces."""
    for pos in range(b - 1, a, -1):
        between = p.original[p.index[pos - 1] + 1:p.index[pos]]
        if between and CLAUSE.fullmatch(between) is None:
            return pos
    return a


def _apart(company: list[Hit], selves: list[Hit]) -> list[Hit]:
    return [h for h in company if not any(overlaps(h, s) for s in selves)]


def _before_role(seg: Seg, selves: list[Hit]) -> list[tuple[int, int]]:
    """The words of 我是<X>的<who> between 我是 and 的: 我是云杉口腔的客服小周, 我是顺风驾校教务处的张老师,
    我是远方旅行社的计调王梅. X names whom the agent works for — not when it speaks of a person
    (我是负责您这单的, 我是上次给您打电话的): no 您/你/他/她 in it and no verb of doing first."""
    norm = seg.prep.norm
    out = []
    for h in selves:
        if h.seg.n != seg.n or h.match.how != BY_TEXT or norm[h.match.norm_start:h.match.norm_end] != _I_AM:
            continue
        a = h.match.norm_end
        of = norm.find("的", a, a + I_AM_CHARS + 1)
        if of <= a or of + 1 >= len(norm):
            continue
        rest = prepare(norm[of + 1:of + 6])
        role = any(m.norm_start == 0 for r in ROLES for m in find_all(rest, r))
        whose = norm[a:of]
        if role or not (set(whose) & _PEOPLE or whose[0] in _DOING or _department(whose)):
            out.append((a, of))
    return out


def _department(words: str) -> bool:
    """售后 / 理赔组 / 客服部: a department's name without the company's (a role follows a company's)."""
    for word in DEPARTMENT_WORDS:
        words = words.replace(word, "")
    return len(words) < SLOT_CHARS[0]


def judge(call: Call, item: Item, c: IntroductionCheck, after: float | None) -> Verdict:
    segs = opening(call, item.speaker, c.window)
    where = describe(call, c.window, item.speaker)
    names, configured = company_phrases(call)
    company = call.hits(segs, names) + call.hits(segs, c.company) + call.hits(segs, c.organisations)
    company = [h for h in company if in_window(call, h, c.window)]
    if c.not_company:
        company = [h for h in company if not not_company(h.match.text, c)]
    selves = [h for h in call.hits(segs, c.self) if in_window(call, h, c.window)]
    if c.use_metadata:
        selves += self_from_meta(call, segs)
    # A stretch that names the agent is not also the company (工号三三零二为您服务 / 花语鲜花我是客服 …):
    # the slot is looked at when no other company stretch is left.
    company = _apart(company, selves)
    if c.company_slot and not company:
        company = _apart(slot_company(call, segs, selves, c), selves)
        if configured:
            # a centre file says who the company is: the slot counts when it sounds like one of its names,
            # with half a syllable's tolerance per syllable (Whisper garbles brand names most: 乐票网 → 诺票网)
            company = [h for h in company if any(
                find_all(prepare(h.match.text), name, tolerance=len(name.text) / 2) for name in names)]
    if company and selves:
        hits = [min(company, key=lambda h: (h.match.how != BY_TEXT, h.start)),
                min(selves, key=lambda h: (h.match.how != BY_TEXT, h.start))]
        return hits_verdict(call, PASS, hits, "intro.both",
                            {"company": said_at(call, hits[0]), "agent": said_at(call, hits[1])})
    text, start, end = searched(segs, item.speaker, call)
    review = any(call.low_confidence(s) for s in segs)
    expected = call.say("sep.list").join(configured) if configured else alternatives(c.company, 3)
    code = "intro.no_self" if company else ("intro.no_company" if selves else "intro.neither")
    return call.verdict(FAIL, code, {"company": expected, "where": where}, evidence_text=text, start=start,
                        end=end, matched_by=BY_TEXT, needs_review=review)


def hotwords(c: IntroductionCheck, centre: Centre) -> tuple[Phrase, ...]:
    return tuple(p for company in centre.companies for p in company.aliases) + c.self + c.company


KIND = Kind("introduction", IntroductionCheck, ("type", "company", "organisations", "self", "window", "use_metadata",
                                               "not_company", "company_slot"), parse, judge, hotwords)
