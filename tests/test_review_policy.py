"""The review policy file: defaults, every key, and one-line FILE:LINE errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from qa_pipeline.review.policy import (DisputePolicy, Duties, Policy, PolicyError, Sample, load_policy, parse_policy,
                                       policy_for)

FULL = """\
queue:
  needs_review: false
  critical_failures: true
  below_pass: false
  sample:
    percent: 12.5
    seed: 华东中心
disputes:
  window_days: 3
  first_review_days: 2
  escalate_days: 4
  second_review_days: 6
duties:
  review: [inspector]
  first_review: [inspector, inspector]
  second_review: [supervisor, manager]
trust:
  min_labelled: 30
"""


def test_empty_file_is_the_defaults():
    p = parse_policy("", "p.yaml")
    assert p == Policy(path="p.yaml")
    assert (p.queue.sample.per_agent, p.queue.sample.percent, p.disputes.window_days) == (2, None, 7)


def test_every_key():
    p = parse_policy(FULL, "p.yaml")
    assert (p.queue.needs_review, p.queue.critical_failures, p.queue.below_pass) == (False, True, False)
    assert p.queue.sample == Sample(per_agent=None, percent=12.5, seed="华东中心")
    assert p.disputes == DisputePolicy(window_days=3, first_review_days=2, escalate_days=4, second_review_days=6)
    assert p.duties == Duties(review=("inspector",), first_review=("inspector",), second_review=("supervisor", "manager"))
    assert p.trust.min_labelled == 30


def test_defaults_of_disputes_duties_and_trust():
    p = Policy()
    assert (p.disputes.first_review_days, p.disputes.escalate_days, p.disputes.second_review_days) == (3, 3, 5)
    assert (p.duties.review, p.duties.first_review, p.duties.second_review) == (
        ("inspector", "supervisor"), ("inspector", "supervisor"), ("supervisor",))
    assert (p.trust.last_n, p.trust.min_agreement, p.trust.min_labelled) == (50, 0.8, 20)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("queue:\n  sampel: {per_agent: 2}\n", "p.yaml:2: queue: unknown key 'sampel' (allowed: needs_review, critical_failures, below_pass, sample)"),
        ("trsut: {}\n", "p.yaml:1: policy: unknown key 'trsut' (allowed: queue, disputes, duties, trust, reasons, notify)"),
        ("duties:\n  second_review: [agent]\n", "p.yaml:2: duties.second_review: 'agent' is not a role that may take it (allowed: inspector, supervisor, manager)"),
        ("duties:\n  first_review: []\n", "p.yaml:2: duties.first_review must be a list of roles (inspector, supervisor, manager)"),
        ("duties:\n  first_review: supervisor\n", "p.yaml:2: duties.first_review must be a list of roles (inspector, supervisor, manager)"),
        ("duties:\n  appeal: [supervisor]\n", "p.yaml:2: duties: unknown key 'appeal' (allowed: review, first_review, second_review)"),
        ("disputes:\n  escalate_days: -1\n", "p.yaml:2: disputes.escalate_days must be >= 0"),
        ("trust:\n  min_labelled: 0\n", "p.yaml:2: trust.min_labelled must be >= 1"),
        ("trust:\n  min_agreement: 80\n", "p.yaml:2: trust.min_agreement must be between 0 and 1"),
        ("trust:\n  last_n: 0\n", "p.yaml:2: trust.last_n must be >= 1"),
        ("trust:\n  last: 20\n", "p.yaml:2: trust: unknown key 'last' (allowed: last_n, min_agreement, min_labelled)"),
        ("queue:\n  needs_review: yes please\n", "p.yaml:2: queue.needs_review must be true or false"),
        ("queue:\n  sample:\n    per_agent: 2\n    percent: 5\n", "p.yaml:3: queue.sample takes per_agent or percent, not both"),
        ("queue:\n  sample: {percent: 150}\n", "p.yaml:2: queue.sample.percent must be between 0 and 100"),
        ("queue:\n  sample: {per_agent: -1}\n", "p.yaml:2: queue.sample.per_agent must be >= 0"),
        ("disputes:\n  window_days: 2.5\n", "p.yaml:2: disputes.window_days must be an integer"),
        ("queue: [1, 2]\n", "p.yaml:1: queue must be a mapping (allowed keys: needs_review, critical_failures, below_pass, sample)"),
        ("queue:\n  needs_review: true\n  needs_review: false\n", "p.yaml:3: queue: duplicate key 'needs_review'"),
        ("queue: {\n", "p.yaml:2: not valid YAML: expected the node content, but found '<stream end>'"),
        # the rubric's hardening holds here too: one reader for both files
        ("trust:\n  min_agreement: .nan\n", "p.yaml:2: trust.min_agreement must be a finite number, not nan"),
        ("queue:\n  sample: {percent: !!float abc}\n", "p.yaml:2: 'abc' is not a valid !!float"),
    ],
)
def test_errors_name_the_file_and_line(text: str, error: str):
    with pytest.raises(PolicyError) as e:
        parse_policy(text, "p.yaml")
    assert str(e.value) == error


def test_policy_for_out_prefers_the_given_file_then_out(tmp_path: Path):
    assert policy_for(tmp_path) == Policy()
    (tmp_path / "review-policy.yaml").write_text("disputes: {window_days: 1}\n", encoding="utf-8")
    assert policy_for(tmp_path).disputes.window_days == 1
    other = tmp_path / "other.yaml"
    other.write_text(FULL, encoding="utf-8")
    assert policy_for(tmp_path, other).disputes.window_days == 3
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "missing.yaml")


def test_cli_policy_check(tmp_path: Path):
    good = tmp_path / "p.yaml"
    good.write_text(FULL, encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "check", str(good)])
    assert result.exit_code == 0
    assert "sample 12.5% of calls per agent per day" in result.output and "disputes within 3 days" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("queue:\n  below_pass: 1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "check", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {bad}:2: queue.below_pass must be true or false"
    result = CliRunner().invoke(app, ["review", str(tmp_path), "--policy", str(bad)])
    assert result.exit_code == 2 and f"{bad}:2:" in result.output
