"""What a manager reads in the morning, made from what the night already computed: the customer's
mood per call, why customers called, what changed, and alerts.

The batch (`qa run`, `qa score`) calls three steps around its own outputs (batch.store.write_outputs):

1. :meth:`Morning.of_night` — the customer's mood in each scored call of the batch (mood.model),
   from its transcript (voice features come with the utterances) and the sentence encoder's vectors
   of the customer's clauses (customer_text; cached, so a re-score encodes nothing twice);
2. :meth:`Morning.write` — ``OUT/mood/turns.parquet`` and, for every day the batch touched, every
   call of that day grouped again into ``OUT/reasons/`` (reasons are per period);
3. :meth:`Morning.pages` — the views the report pages show (trends, reasons, each card's curve) and
   the reason pages; :meth:`Morning.notify` — the alerts of the policy's ``notify:`` section.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from qa_pipeline.customer_text import CustomerClauses, customer_clauses, meaning_text
from qa_pipeline.dispute_deadlines import DisputePolicy, parse_disputes
from qa_pipeline.errors import QaError
from qa_pipeline.models import cache_root
from qa_pipeline.mood.model import MoodModel, call_mood, load_mood_model
from qa_pipeline.mood.table import write_moods
from qa_pipeline.mood.words import ExampleSimilarity
from qa_pipeline.output.tables import call_date, read_score_tables, read_transcripts
from qa_pipeline.parallel import map_chunks
from qa_pipeline.reasons.assign import CallRequest, assign
from qa_pipeline.reasons.groups import learn_words
from qa_pipeline.reasons.pinned import PinnedVectors, ReasonsConfig
from qa_pipeline.reasons.request import customer_request, request_vectors
from qa_pipeline.reasons.table import read_reasons, write_reasons
from qa_pipeline.final_verdicts import FinalCall
from qa_pipeline.records import CallMood, CallReason, CallScore, CallTranscript
from qa_pipeline.alerts.config import NotifyConfig, parse_notify
from qa_pipeline.reasons.pinned import parse_reasons
from qa_pipeline.yaml_nodes import LineError, NodeReader, compose_text, read_text
from qa_pipeline.trends import CallFacts

log = logging.getLogger("qa_pipeline")

TREND_DAYS = 35  # this week and the four before it
EMBEDDINGS_DIR = "embeddings"


@lru_cache(maxsize=1)
def default_embeddings():
    """The sentence encoder's vectors, cached beside the transcript cache (meaning.cache)."""
    from qa_pipeline.meaning.cache import EmbeddingCache
    from qa_pipeline.meaning.encoder import load_encoder

    return EmbeddingCache(load_encoder(), cache_root() / EMBEDDINGS_DIR)


POLICY_FILE = "review-policy.yaml"  # the review policy in OUT (review.policy), whose sections the batch reads here


class _PolicyError(LineError):
    pass


@dataclass(frozen=True)
class MorningPolicy:
    """The review policy's sections the batch reads: `reasons:`, `notify:` and `disputes:`."""

    reasons: ReasonsConfig = field(default_factory=ReasonsConfig)
    notify: NotifyConfig | None = None
    disputes: DisputePolicy = field(default_factory=DisputePolicy)  # the deadlines an overdue alert reads


def night_policy(out: Path) -> MorningPolicy:
    """The `reasons:`, `notify:` and `disputes:` sections of OUT/review-policy.yaml, read by their own parsers
    (the rest of the file is the desk's: `qa policy check` validates all of it); the defaults when
    the file is absent or unusable (the batch never stops over it, the run log says why)."""
    path = Path(out) / POLICY_FILE
    if not path.is_file():
        return MorningPolicy()
    try:
        root = compose_text(read_text(path, _PolicyError, "policy"), str(path), _PolicyError)
        if not isinstance(root, yaml.MappingNode):
            return MorningPolicy()
        r = NodeReader(str(path), _PolicyError)
        nodes = {r.scalar(k): v for k, v in root.value}
        return MorningPolicy(parse_reasons(r, nodes["reasons"]) if "reasons" in nodes else ReasonsConfig(),
                             parse_notify(r, nodes["notify"]) if "notify" in nodes else None,
                             parse_disputes(r, nodes["disputes"]) if "disputes" in nodes else DisputePolicy())
    except QaError as e:
        log.warning("review policy not used for reasons and alerts, defaults instead: %s", e)
        return MorningPolicy()


@dataclass(frozen=True)
class CallText:
    """One call's customer clauses and request, as the mood and reason stages read them."""

    clauses: CustomerClauses
    request: CallRequest


def call_text(transcript: CallTranscript, embeddings) -> CallText:
    clauses = customer_clauses(transcript, embeddings)
    request = customer_request(transcript, clauses)
    vectors, mean = request_vectors(clauses, request)
    return CallText(clauses, CallRequest(transcript.call_id, request.text, request.at, mean, vectors))


def turn_margins(text: CallText, similarity: ExampleSimilarity) -> list[float]:
    """Per customer turn, its most frustrated clause's example margin."""
    margins = similarity.margins(text.clauses.vectors)
    return [float(margins[a:b].max()) if b > a else 0.0 for a, b in text.clauses.spans]


def example_similarity(model: MoodModel, embeddings) -> ExampleSimilarity:
    return ExampleSimilarity.from_examples(embeddings, [meaning_text(t) for t in model.frustrated_examples],
                                           [meaning_text(t) for t in model.calm_examples])


@dataclass(frozen=True)
class MoodReader:
    """One call's mood and request (`reader(transcript)`), with what that reads loaded once: the
    embeddings, the mood model and its example sentences' vectors. A pure function of the call, so
    moods_of runs it on every core, and `qa score` in the workers that score the calls."""

    embeddings: object
    model: MoodModel
    similarity: ExampleSimilarity

    @classmethod
    def load(cls, embeddings=None, model: MoodModel | None = None) -> MoodReader:
        embeddings = embeddings or default_embeddings()
        model = model or load_mood_model()
        return cls(embeddings, model, example_similarity(model, embeddings))

    def __call__(self, transcript: CallTranscript) -> tuple[CallMood, CallRequest]:
        text = call_text(transcript, self.embeddings)
        return call_mood(transcript, self.model, turn_margins(text, self.similarity)), text.request


def moods_of(transcripts: Iterable[CallTranscript], embeddings, model: MoodModel | None = None
             ) -> tuple[dict[str, CallMood], dict[str, CallRequest]]:
    """The customer's mood in each call, and each call's request (for its reason), on every core."""
    found = map_chunks(partial(_moods, reader=MoodReader.load(embeddings, model)), list(transcripts))
    return {m.call_id: m for m, _r in found}, {r.call_id: r for _m, r in found}


def _moods(transcripts: Sequence[CallTranscript], *, reader: MoodReader) -> list[tuple[CallMood, CallRequest]]:
    return [reader(t) for t in transcripts]


@dataclass
class Morning:
    policy: MorningPolicy
    moods: dict[str, CallMood]
    requests: dict[str, CallRequest]  # this batch's calls
    embeddings: object = None
    reasons: dict[str, CallReason] = field(default_factory=dict)  # every call of the days this batch touched
    doubled: tuple[str, ...] = ()  # reasons that doubled this week against last (set by pages())
    last_day: date | None = None  # the latest call date in OUT (set by pages())
    tables: tuple[pa.Table, pa.Table] | None = None  # OUT's score tables as write() read them

    @classmethod
    def of_night(cls, out: Path, transcripts: Mapping[str, CallTranscript], scores: Sequence[CallScore],
                 embeddings=None, found: Mapping[str, tuple[CallMood, CallRequest]] | None = None) -> Morning:
        """`found`: the mood and request of calls already read (a MoodReader of the same embeddings)."""
        embeddings = embeddings or default_embeddings()
        ok = [transcripts[s.call_id] for s in scores if s.status == "ok" and s.call_id in transcripts]
        found = dict(found or {})
        rest = [t for t in ok if t.call_id not in found]
        if rest:
            moods, requests = moods_of(rest, embeddings)
            found.update((c, (m, requests[c])) for c, m in moods.items())
        return cls(night_policy(out), {t.call_id: found[t.call_id][0] for t in ok},
                   {t.call_id: found[t.call_id][1] for t in ok}, embeddings)

    def cards(self, transcripts: Mapping[str, CallTranscript]) -> MoodCards:
        """Each call card's mood curve, made as the card is written."""
        return MoodCards(self.moods, transcripts, load_mood_model().threshold)

    def pinned(self) -> PinnedVectors | None:
        config = self.policy.reasons
        return PinnedVectors.of(config, self.embeddings) if config.pinned else None

    def write(self, out: Path, scores: Sequence[CallScore]) -> None:
        """The mood table, and the reasons of every day this batch touched (all its calls, regrouped)."""
        out = Path(out)
        write_moods(out, self.moods, replaces=[s.call_id for s in scores])
        self.tables = read_score_tables(out)  # read once: pages() reads the same
        calls = self.tables[0]
        days = {call_date(s.started_at, s.processed_at) for s in scores}
        ok = calls.filter(pc.equal(calls["status"], "ok"))
        on_days = {r["call_id"]: r["call_date"] for r in ok.select(["call_id", "call_date"]).to_pylist()
                   if r["call_date"] in days}
        requests = self.requests_for(out, on_days)
        learn_words(r.text for r in requests.values())  # the groups' names, every request's words at once
        pinned = self.pinned()
        reasons: list[CallReason] = []
        for day in sorted(days):
            ids = [c for c, d in on_days.items() if d == day]
            reasons += assign([requests[c] for c in ids], self.policy.reasons, pinned,
                              self.embeddings.encoder.dim).reasons
        self.reasons = {r.call_id: r for r in reasons}
        failed = [s.call_id for s in scores if s.status != "ok"]
        write_reasons(out, reasons, on_days, replaces=failed)

    def requests_for(self, out: Path, call_ids: Iterable[str]) -> dict[str, CallRequest]:
        """The requests of these calls: this batch's as computed, others' from OUT's transcripts."""
        wanted = set(call_ids)
        found = {c: r for c, r in self.requests.items() if c in wanted}
        missing = wanted - set(found)
        if missing:
            for t in read_transcripts(out, missing, words=False).values():
                found[t.call_id] = call_text(t, self.embeddings).request
        return found

    def notify(self, out: Path, scores: Sequence[CallScore], transcripts: Mapping[str, CallTranscript],
               finals: Mapping[str, FinalCall] | None = None, today: date | None = None) -> list[dict]:
        """Send the alerts of the policy's `notify:` section (none without it) for this batch's calls
        (`scores`, judged by their final verdicts in `finals` where there) and for the disputes of
        every call in OUT (`finals`) past their deadline on `today` (default: the local date); the
        log records. Never raises: alerts must not cost the night's outputs."""
        from qa_pipeline.alerts.events import critical_fails, doubled_reasons, overdue_disputes, regulator_threats
        from qa_pipeline.alerts.send import send_all

        config = self.policy.notify
        if config is None:
            return []
        try:
            if finals:
                scores = [finals[s.call_id].as_score() if s.call_id in finals else s for s in scores]
            alerts = critical_fails(scores) + regulator_threats(scores, transcripts)
            if self.doubled and self.last_day is not None:
                alerts += doubled_reasons(self.doubled, self.last_day)
            if finals:
                alerts += overdue_disputes(finals.values(), self.policy.disputes, today or date.today())
            return send_all(Path(out), alerts, config)
        except Exception as e:  # noqa: BLE001
            log.warning("alerts not sent: %s: %s", type(e).__name__, e)
            return []

    # --- the pages --------------------------------------------------------------------------

    def facts(self, out: Path) -> tuple[list[CallFacts], dict[str, tuple[float | None, bool | None]]]:
        """Every scored call of OUT as trends read it, and each call's (peak, de-escalated)."""
        calls, items = self.tables if self.tables is not None else read_score_tables(Path(out))
        by_call: dict[str, list[tuple[str, str, str]]] = {}
        for row in items.select(["call_id", "item_id", "item_name", "final_result"]).to_pylist():
            by_call.setdefault(row["call_id"], []).append((row["item_id"], row["item_name"], row["final_result"]))
        facts, moods = [], {}
        for r in calls.select(["call_id", "status", "team", "agent_id", "final_passed", "frustration_peak",
                               "deescalated", "call_date"]).to_pylist():
            if r["status"] != "ok":
                continue
            failed = None if r["final_passed"] is None else not r["final_passed"]
            facts.append(CallFacts(r["call_id"], r["call_date"], r["team"], r["agent_id"], failed, r["frustration_peak"],
                                   tuple(by_call.get(r["call_id"], ()))))
            moods[r["call_id"]] = (r["frustration_peak"], r["deescalated"])
        return facts, moods

    def pages(self, out: Path, transcripts: Mapping[str, CallTranscript]) -> MorningPages:
        from qa_pipeline.output import manager as views
        from qa_pipeline.reasons.period import compare
        from qa_pipeline.trends import trends

        out = Path(out)
        model = load_mood_model()
        facts, moods = self.facts(out)
        pages = MorningPages(threshold=model.threshold)
        pages.cards = self.cards(transcripts)
        if not facts:
            return pages
        last = max(f.day for f in facts)
        self.last_day = last
        by_agent: dict[str, list[CallFacts]] = {}
        for f in facts:
            by_agent.setdefault(f.agent_id or "_unknown", []).append(f)
        pages.agents = {key: {"trends": views.trends_view(trends(fs, last)),
                              "mood": views.deescalation([moods[f.call_id] for f in fs], model.threshold)}
                        for key, fs in by_agent.items()}
        # reasons: the latest night, its month and this week, each against the period before it
        teams = {f.call_id: f.team for f in facts}
        month_start = last.replace(day=1)
        prev_month = (month_start - timedelta(days=1)).replace(day=1)
        week = [f for f in facts if last - timedelta(days=6) <= f.day <= last]
        earlier = [f for f in facts if last - timedelta(days=TREND_DAYS - 1) <= f.day < last - timedelta(days=6)]
        last_week = [f for f in facts if last - timedelta(days=13) <= f.day < last - timedelta(days=6)]
        night = [f for f in facts if f.day == last]
        before_days = sorted({f.day for f in facts if f.day < last})
        prev_night = [f for f in facts if before_days and f.day == before_days[-1]]
        month = [f for f in facts if month_start <= f.day <= last]
        prev = [f for f in facts if prev_month <= f.day < month_start]
        needed = {f.call_id for f in (*week, *earlier, *night, *prev_night, *month, *prev)}
        requests = self.requests_for(out, needed)
        learn_words(r.text for r in requests.values())
        pinned = self.pinned()
        dim = self.embeddings.encoder.dim

        def comparison(now: Sequence[CallFacts], before: Sequence[CallFacts]):
            return compare([requests[f.call_id] for f in now], [requests[f.call_id] for f in before], teams,
                           self.policy.reasons, pinned, dim) if now else None

        weekly = comparison(week, earlier)
        doubled = comparison(week, last_week)
        self.doubled = doubled.doubled if doubled else ()
        night_file, month_file = f"day-{last:%Y-%m-%d}.html", f"month-{last:%Y-%m}.html"
        night_view = views.reasons_view(comparison(night, prev_night), title=f"来电原因 · {last:%Y-%m-%d}",
                                        before_label=f"{before_days[-1]:%m-%d}" if before_days else "前一天",
                                        calls_prefix="../calls/")
        month_view = views.reasons_view(comparison(month, prev), title=f"来电原因 · {last:%Y年%m月}",
                                        before_label=f"{prev_month:%Y年%m月}", calls_prefix="../calls/")
        week_view = views.reasons_view(weekly, title="本周来电原因", before_label="前四周", calls_prefix="calls/")
        pages.index = {
            "trends": views.trends_view(trends(facts, last)),
            "mood": views.deescalation(list(moods.values()), model.threshold),
            "reasons": week_view,
            "doubled": [views.mask_pii(n) for n in self.doubled],
            "night_href": f"reasons/{night_file}", "month_href": f"reasons/{month_file}",
        }
        for name, view in ((night_file, night_view), (month_file, month_view)):
            if view is not None:
                pages.extra.append((f"reasons/{name}", "reasons.html.j2", {"reasons": view, "night_href": night_file,
                                                                            "month_href": month_file}))
        return pages


class MoodCards(Mapping[str, "dict | None"]):
    """Each call's mood curve (output.manager.mood_card) by call_id, made when its card asks for it:
    in the workers that write the cards, not one after another before them."""

    def __init__(self, moods: Mapping[str, CallMood], transcripts: Mapping[str, CallTranscript], threshold: float
                 ) -> None:
        self.moods, self.transcripts, self.threshold = moods, transcripts, threshold

    def __getitem__(self, call_id: str) -> dict | None:
        from qa_pipeline.output.manager import mood_card

        return mood_card(self.moods[call_id], self.transcripts.get(call_id), self.threshold)

    def __iter__(self):
        return iter(self.moods)

    def __len__(self) -> int:
        return len(self.moods)


@dataclass
class MorningPages:
    """What render_reports adds to its pages (see output.report): a card's mood, an agent's trends
    and de-escalation, the index's trends and reasons, and the reason pages."""

    threshold: float
    cards: Mapping[str, dict | None] = field(default_factory=dict)
    agents: dict[str, dict] = field(default_factory=dict)
    index: dict | None = None
    extra: list[tuple[str, str, dict]] = field(default_factory=list)  # (path under reports/, template, context)

