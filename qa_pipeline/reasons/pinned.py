"""A centre's own reasons for calling, pinned in the policy file, and requests classified to them.

```yaml
reasons:
  min_similarity: 0.35        # a request less similar than this to every pinned reason is 其他
  group_similarity: 0.5       # requests grouped together (the unpinned ones, or all without pins)
  pinned:
    - name: 故障报修
      examples: [家里突然停电了, 宽带连不上网了, 燃气灶打不着火]
    - name: 费用账单
      examples: [这个月的费用怎么这么高, 我想查一下账单]
```
A request goes to the pinned reason with the closest example to any of its clauses (cosine of unit
vectors), when that similarity reaches ``min_similarity``; otherwise to 其他, where it is still
grouped with alike requests. Errors are ``FILE:LINE: …`` like the rest of the policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import yaml

from qa_pipeline.customer_text import meaning_text
from qa_pipeline.yaml_nodes import NodeReader

OTHER = "其他"
MIN_SIMILARITY = 0.35
GROUP_SIMILARITY = 0.5
MAX_REASONS = 100
MAX_EXAMPLES = 200


@dataclass(frozen=True)
class PinnedReason:
    name: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class ReasonsConfig:
    pinned: tuple[PinnedReason, ...] = ()
    min_similarity: float = MIN_SIMILARITY
    group_similarity: float = GROUP_SIMILARITY


def parse_reasons(r: NodeReader, node: yaml.Node) -> ReasonsConfig:
    """The `reasons:` section of the policy file."""
    m = r.mapping(node, "reasons", ("pinned", "min_similarity", "group_similarity"))
    kw: dict = {}
    for key in ("min_similarity", "group_similarity"):
        if key in m:
            kw[key] = r.number(m[key], f"reasons.{key}", maximum=1.0)
    if "pinned" in m:
        kw["pinned"] = _pinned(r, m["pinned"])
    return ReasonsConfig(**kw)


def _sequence(r: NodeReader, node: yaml.Node, what: str, limit: int) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise r.error(node, f"{what} must be a non-empty list")
    if len(node.value) > limit:
        raise r.error(node, f"{what}: at most {limit} entries")
    return node.value


def _pinned(r: NodeReader, node: yaml.Node) -> tuple[PinnedReason, ...]:
    out: list[PinnedReason] = []
    for entry in _sequence(r, node, "reasons.pinned", MAX_REASONS):
        m = r.mapping(entry, "reasons.pinned[]", ("name", "examples"))
        if "name" not in m or "examples" not in m:
            raise r.error(entry, "reasons.pinned[] needs a name and examples")
        name = r.string(m["name"], "reasons.pinned[].name").strip()
        if name == OTHER or any(p.name == name for p in out):
            raise r.error(m["name"], f"reasons.pinned: '{name}' is {'reserved' if name == OTHER else 'named twice'}")
        examples = tuple(r.string(e, f"reasons.pinned[{name}].examples[]").strip()
                         for e in _sequence(r, m["examples"], f"reasons.pinned[{name}].examples", MAX_EXAMPLES))
        out.append(PinnedReason(name, examples))
    return tuple(out)


@dataclass(frozen=True)
class PinnedVectors:
    """The pinned reasons' example vectors, one canonical batch (meaning.cache)."""

    reasons: tuple[PinnedReason, ...]
    vectors: np.ndarray  # all examples, reason after reason
    owner: np.ndarray  # index of the reason of each row

    @classmethod
    def of(cls, config: ReasonsConfig, embeddings) -> PinnedVectors:
        texts = [meaning_text(e) for p in config.pinned for e in p.examples]
        owner = np.array([k for k, p in enumerate(config.pinned) for _ in p.examples], dtype=np.int64)
        return cls(config.pinned, embeddings.vectors(texts), owner)

    def classify(self, requests: Sequence[np.ndarray], min_similarity: float) -> list[tuple[str, float]]:
        """(reason, similarity of its closest example to the closest clause) per request (its
        clauses' vectors); 其他 under the floor."""
        out = []
        for clauses in requests:
            if not self.reasons or len(clauses) == 0:
                out.append((OTHER, 0.0))
                continue
            sims = (clauses @ self.vectors.T).max(axis=0)
            best = np.full(len(self.reasons), -1.0, dtype=np.float32)
            np.maximum.at(best, self.owner, sims)
            k = int(best.argmax())
            s = round(float(best[k]), 4)
            out.append((self.reasons[k].name, s) if s >= min_similarity else (OTHER, s))
        return out


def names(config: ReasonsConfig) -> Sequence[str]:
    return [p.name for p in config.pinned]
