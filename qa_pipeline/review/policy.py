"""The review policy: what goes in the inspector's queue, who may do what, and the deadlines of
disputes (申诉: 一审, then 二审).

A small YAML file, every key optional (defaults below), validated like the rubric: anything it
does not understand is refused with one line ``FILE:LINE: what is wrong (allowed: …)``.

```yaml
queue:
  needs_review: true        # items the machine marked as unsure
  critical_failures: true   # calls with a critical item failed
  below_pass: true          # calls under the rubric's pass mark
  sample:                   # 抽检: a random sample of each agent's calls per day
    per_agent: 2            # N calls per agent per day … (or)
    # percent: 10           # … P % of them, rounded up; give one of the two
    seed: qa-sample         # mixed with the day and the agent: the same day gives the same sample
disputes:
  window_days: 7            # 申诉: an agent may dispute a failed item up to N days after the call
  first_review_days: 3      # 一审 is due N days after the dispute (shown; late ones flagged)
  escalate_days: 3          # 二审: the agent may escalate up to N days after the 一审 answer
  second_review_days: 5     # 二审 is due N days after the escalation
duties:                     # which roles may (agents never; a person never judges their own decision)
  review: [inspector, supervisor]         # confirm / override, notes, mark a call reviewed
  first_review: [inspector, supervisor]   # 一审: not the person whose decision is disputed
  second_review: [supervisor]             # 二审, final: not the 一审's answerer nor the disputed decision's maker
trust:                      # an item's automatic verdict is trusted while people agree with it
  last_n: 50                # over the labels of the item's last N labelled calls …
  min_agreement: 0.8        # … agreement under this: 自动判定不可信, its fails wait for a person
  min_labelled: 20          # … judged only once that many of those calls are labelled (at most last_n)
```

The file is built from sections, each parsed by its own function in :data:`SECTIONS`; a new
section is one more entry and one more field of :class:`Policy` with a default, and older files
stay valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from qa_pipeline.alerts.config import NotifyConfig, parse_notify
from qa_pipeline.calibration.trust import TrustRule
from qa_pipeline.dispute_deadlines import DisputePolicy, parse_disputes
from qa_pipeline.reasons.pinned import ReasonsConfig, parse_reasons
from qa_pipeline.yaml_nodes import LineError, NodeReader, compose_text, read_text

POLICY_FILE = "review-policy.yaml"  # looked for in OUT when no --policy is given


class PolicyError(LineError):
    """A policy file that cannot be used; str() is one line: FILE:LINE: what is wrong."""


@dataclass(frozen=True)
class Sample:
    per_agent: int | None = 2
    percent: float | None = None
    seed: str = "qa-sample"


@dataclass(frozen=True)
class QueuePolicy:
    needs_review: bool = True
    critical_failures: bool = True
    below_pass: bool = True
    sample: Sample = field(default_factory=Sample)


DUTY_ROLES = ("inspector", "supervisor", "manager")  # the roles a duty may go to


@dataclass(frozen=True)
class Duties:
    review: tuple[str, ...] = ("inspector", "supervisor")
    first_review: tuple[str, ...] = ("inspector", "supervisor")
    second_review: tuple[str, ...] = ("supervisor",)


@dataclass(frozen=True)
class Policy:
    queue: QueuePolicy = field(default_factory=QueuePolicy)
    disputes: DisputePolicy = field(default_factory=DisputePolicy)
    duties: Duties = field(default_factory=Duties)
    trust: TrustRule = field(default_factory=TrustRule)
    reasons: ReasonsConfig = field(default_factory=ReasonsConfig)  # 来电原因: the centre's pinned reasons (reasons.pinned)
    notify: NotifyConfig | None = None  # 预警: where alerts go (alerts.config); None: none are sent
    path: str | None = None


class Reader(NodeReader):
    """Typed policy values; a share or a percentage out of range is said as the range."""

    def __init__(self, path: str) -> None:
        super().__init__(path, PolicyError)

    def number(self, node: yaml.Node, what: str, *, minimum: float = 0.0, maximum: float | None = None) -> float:
        v = self.finite(node, what)
        if v < minimum or (maximum is not None and v > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f">= {minimum:g}"
            raise self.error(node, f"{what} must be {bound}")
        return v


def _sample(r: Reader, node: yaml.Node) -> Sample:
    m = r.mapping(node, "queue.sample", ("per_agent", "percent", "seed"))
    if "per_agent" in m and "percent" in m:
        raise r.error(node, "queue.sample takes per_agent or percent, not both")
    per_agent = r.integer(m["per_agent"], "queue.sample.per_agent") if "per_agent" in m else None
    percent = r.number(m["percent"], "queue.sample.percent", maximum=100.0) if "percent" in m else None
    if per_agent is None and percent is None:
        per_agent = Sample.per_agent
    seed = r.string(m["seed"], "queue.sample.seed") if "seed" in m else Sample.seed
    return Sample(per_agent=per_agent, percent=percent, seed=seed)


def _queue(r: Reader, node: yaml.Node, policy: Policy) -> Policy:
    keys = ("needs_review", "critical_failures", "below_pass", "sample")
    m = r.mapping(node, "queue", keys)
    kw: dict[str, Any] = {k: r.boolean(m[k], f"queue.{k}") for k in keys[:3] if k in m}
    if "sample" in m:
        kw["sample"] = _sample(r, m["sample"])
    return replace(policy, queue=replace(policy.queue, **kw))


def _roles(r: Reader, node: yaml.Node, what: str) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise r.error(node, f"{what} must be a list of roles ({', '.join(DUTY_ROLES)})")
    roles = []
    for item in node.value:
        role = r.string(item, what)
        if role not in DUTY_ROLES:
            raise r.error(item, f"{what}: {role!r} is not a role that may take it (allowed: {', '.join(DUTY_ROLES)})")
        roles.append(role)
    return tuple(dict.fromkeys(roles))


def _duties(r: Reader, node: yaml.Node, policy: Policy) -> Policy:
    keys = ("review", "first_review", "second_review")
    m = r.mapping(node, "duties", keys)
    return replace(policy, duties=replace(policy.duties, **{k: _roles(r, m[k], f"duties.{k}") for k in keys if k in m}))


def _trust(r: Reader, node: yaml.Node, policy: Policy) -> Policy:
    m = r.mapping(node, "trust", ("last_n", "min_agreement", "min_labelled"))
    kw: dict[str, Any] = {}
    if "last_n" in m:
        kw["last_n"] = r.integer(m["last_n"], "trust.last_n", minimum=1)
    if "min_agreement" in m:
        kw["min_agreement"] = r.number(m["min_agreement"], "trust.min_agreement", maximum=1.0)
    if "min_labelled" in m:
        kw["min_labelled"] = r.integer(m["min_labelled"], "trust.min_labelled", minimum=1)
    return replace(policy, trust=replace(policy.trust, **kw))


SECTIONS: dict[str, Callable[[Reader, yaml.Node, Policy], Policy]] = {
    "queue": _queue,
    "disputes": lambda r, node, policy: replace(policy, disputes=parse_disputes(r, node)),  # also read by the batch
    "duties": _duties,
    "trust": _trust,
    "reasons": lambda r, node, policy: replace(policy, reasons=parse_reasons(r, node)),
    "notify": lambda r, node, policy: replace(policy, notify=parse_notify(r, node)),
}


def parse_policy(text: str, path: str = "<policy>") -> Policy:
    """A Policy from YAML text (empty text: the defaults); PolicyError naming the line otherwise."""
    r = Reader(path)
    root = compose_text(text, path, PolicyError)
    policy = Policy(path=path)
    if root is None:
        return policy
    for key, node in r.mapping(root, "policy", tuple(SECTIONS)).items():
        policy = SECTIONS[key](r, node, policy)
    return policy


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; PolicyError (FILE:LINE: …) if it is unusable."""
    return parse_policy(read_text(path, PolicyError, "policy"), str(path))


def policy_for(out: Path, path: Path | None = None) -> Policy:
    """The policy given, else OUT/review-policy.yaml when present, else the defaults."""
    if path is not None:
        return load_policy(path)
    default = Path(out) / POLICY_FILE
    return load_policy(default) if default.is_file() else Policy()
