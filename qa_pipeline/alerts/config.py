"""The ``notify:`` section of the review policy file.

```yaml
notify:
  alerts: [critical_fail, regulator_threat, reason_doubled, dispute_overdue]   # default: all of them
  webhook:                       # POST application/json (the centre's IM bot, a mail gateway)
    url: https://im.example.cn/hook/abc
    headers: {X-Token: "…"}      # optional
  command: [/usr/local/bin/notify-qa, --channel, qa]   # run without a shell; the JSON on stdin
  timeout_s: 10                  # per attempt
  retries: 3                     # attempts after the first failure
  backoff_s: 2                   # wait before retry k: backoff_s × 2^(k-1)
```
A webhook, a command, or both. Errors are ``FILE:LINE: …`` like the rest of the policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import yaml

from qa_pipeline.yaml_nodes import NodeReader

KINDS = ("critical_fail", "regulator_threat", "reason_doubled", "dispute_overdue")
KEYS = ("alerts", "webhook", "command", "timeout_s", "retries", "backoff_s")


@dataclass(frozen=True)
class Webhook:
    url: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NotifyConfig:
    kinds: tuple[str, ...] = KINDS
    webhook: Webhook | None = None
    command: tuple[str, ...] | None = None
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 2.0


def _strings(r: NodeReader, node: yaml.Node, what: str) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise r.error(node, f"{what} must be a non-empty list")
    return tuple(r.string(v, f"{what}[]") for v in node.value)


def _webhook(r: NodeReader, node: yaml.Node) -> Webhook:
    m = r.mapping(node, "notify.webhook", ("url", "headers"))
    if "url" not in m:
        raise r.error(node, "notify.webhook needs a url")
    url = r.string(m["url"], "notify.webhook.url").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise r.error(m["url"], "notify.webhook.url must be an http:// or https:// URL with a host")
    headers: list[tuple[str, str]] = []
    if "headers" in m:
        h = m["headers"]
        if not isinstance(h, yaml.MappingNode):
            raise r.error(h, "notify.webhook.headers must be a mapping of header: value")
        for k, v in h.value:
            name, value = r.string(k, "notify.webhook.headers key"), r.string(v, "notify.webhook.headers value")
            if any(ch in name + value for ch in "\r\n\0"):
                raise r.error(v, "notify.webhook.headers: no line breaks or NUL in a header")
            headers.append((name, value))
    return Webhook(url, tuple(headers))


def parse_notify(r: NodeReader, node: yaml.Node) -> NotifyConfig:
    m = r.mapping(node, "notify", KEYS)
    kw: dict = {}
    if "alerts" in m:
        kinds = _strings(r, m["alerts"], "notify.alerts")
        for kind, v in zip(kinds, m["alerts"].value):
            if kind not in KINDS:
                raise r.error(v, f"notify.alerts: unknown alert '{kind}' (allowed: {', '.join(KINDS)})")
        kw["kinds"] = tuple(dict.fromkeys(kinds))
    if "webhook" in m:
        kw["webhook"] = _webhook(r, m["webhook"])
    if "command" in m:
        kw["command"] = _strings(r, m["command"], "notify.command")
    if "webhook" not in kw and "command" not in kw:
        raise r.error(node, "notify needs a webhook or a command")
    if "timeout_s" in m:
        timeout = r.finite(m["timeout_s"], "notify.timeout_s")
        if not 0 < timeout <= 300:
            raise r.error(m["timeout_s"], "notify.timeout_s must be > 0 and <= 300")
        kw["timeout_s"] = timeout
    if "retries" in m:
        kw["retries"] = r.integer(m["retries"], "notify.retries", maximum=10)
    if "backoff_s" in m:
        backoff = r.finite(m["backoff_s"], "notify.backoff_s")
        if not 0 <= backoff <= 60:
            raise r.error(m["backoff_s"], "notify.backoff_s must be between 0 and 60")
        kw["backoff_s"] = backoff
    return NotifyConfig(**kw)
