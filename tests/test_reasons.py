"""Why customers called: the request, pinned reasons, groups named by their words, the period
comparison (doubled), the policy section and the Parquet table."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow.parquet as pq
import pytest

from factories import make_transcript
from qa_pipeline.customer_text import clauses, customer_clauses
from qa_pipeline.meaning.cache import EmbeddingCache
from qa_pipeline.meaning.encoder import load_encoder
from qa_pipeline.morning import call_text
from qa_pipeline.reasons.assign import CallRequest, assign
from qa_pipeline.reasons.groups import group, words
from qa_pipeline.reasons.period import compare
from qa_pipeline.reasons.pinned import OTHER, PinnedVectors, ReasonsConfig
from qa_pipeline.reasons.request import customer_request
from qa_pipeline.reasons.table import REASONS_SCHEMA, read_reasons, write_reasons
from qa_pipeline.records import AGENT, CUSTOMER, CallReason
from qa_pipeline.review.policy import PolicyError, parse_policy

POLICY = """reasons:
  min_similarity: 0.4
  pinned:
    - name: 停电停水
      examples: [家里突然停电了, 小区停水了什么时候来水, 楼里的灯全都不亮了]
    - name: 快递未到
      examples: [我的快递怎么还没到, 包裹好几天了还没送来, 物流一直不更新]
"""

REQUESTS = {
    "a1": "你好，我们家从昨晚开始就停电了，整栋楼都黑着。",
    "a2": "喂，你好，我家里没有电了，什么时候能修好？",
    "a3": "你好，我们小区今天一直停水，到现在都没来水。",
    "b1": "你好，我买的东西一个星期了还没收到，物流也不动。",
    "b2": "我的包裹显示在路上，可是五天了还没送到。",
    "c1": "你好，我想把会员卡里的积分换成礼品。",
}


@pytest.fixture(scope="module")
def embeddings():
    return EmbeddingCache(load_encoder(), None)


def request_of(call_id: str, text: str, embeddings) -> CallRequest:
    t = make_transcript(call_id, ((AGENT, 0.3, 2.0, "您好，请问有什么可以帮您？"), (CUSTOMER, 2.4, 3.0, "喂？"),
                                  (CUSTOMER, 3.4, 8.0, text), (AGENT, 8.4, 9.0, "好的。"),
                                  (CUSTOMER, 9.4, 12.0, "手机号是13905728846。")), dropped=(), drop_reasons=())
    return call_text(t, embeddings).request


def test_the_request_is_the_first_substantive_customer_turn(embeddings):
    r = request_of("x", REQUESTS["a1"], embeddings)
    assert r.text == REQUESTS["a1"] and r.at == 3.4  # the next customer turn is a number: not part of it
    assert r.clauses.shape == (len(clauses(REQUESTS["a1"])), 512)
    assert np.isclose(np.linalg.norm(r.vector), 1.0, atol=1e-5)
    t = make_transcript("y", ((AGENT, 0.3, 2.0, "您好"), (CUSTOMER, 2.4, 4.0, "一三九零五七二八八四六")), dropped=(), drop_reasons=())
    assert customer_request(t, customer_clauses(t, embeddings)).turns == ()  # a number says no reason


def test_pinned_reasons(embeddings):
    config = parse_policy(POLICY, "p.yaml").reasons
    pinned = PinnedVectors.of(config, embeddings)
    period = assign([request_of(c, t, embeddings) for c, t in REQUESTS.items()], config, pinned, 512)
    got = {r.call_id: r.reason for r in period.reasons}
    assert got == {"a1": "停电停水", "a2": "停电停水", "a3": "停电停水", "b1": "快递未到", "b2": "快递未到", "c1": OTHER}
    assert all(r.pinned for r in period.reasons)
    power = next(g for g in period.groups if g.name == "停电停水")
    assert len(power.examples) == 3 and {c for c, _t in power.examples} == {"a1", "a2", "a3"}


def test_without_pins_alike_requests_are_grouped_and_named_by_their_words(embeddings):
    config = ReasonsConfig(group_similarity=0.5)
    requests = [request_of(c, t, embeddings) for c, t in REQUESTS.items()]
    period = assign(requests, config, None, 512)
    by_call = {r.call_id: r.reason for r in period.reasons}
    assert by_call["b1"] == by_call["b2"] != OTHER
    assert by_call["a1"] != by_call["b1"]
    assert any(w in by_call["b1"] for w in ("物流", "包裹", "收到", "送到"))
    again = assign(list(reversed(requests)), config, None, 512)
    assert again == period  # the same calls group the same way, whatever order they came in


def test_group_numbers_are_by_size():
    v = np.array([[1, 0], [1, 0.01], [0, 1], [0.02, 1], [0.01, 1], [0.7, 0.7]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert group(v, 0.95) == [1, 1, 0, 0, 0, -1]


def test_words_leave_out_small_words_and_numbers():
    assert words("你好，我想问一下我家这个月的电费为什么多了三十块") == ("电费",)


def test_a_reason_that_doubled_is_marked(embeddings):
    config = parse_policy(POLICY, "p.yaml").reasons
    pinned = PinnedVectors.of(config, embeddings)
    now = [request_of(f"p{k}", REQUESTS["a1" if k % 2 else "a3"], embeddings) for k in range(8)] + \
          [request_of(f"q{k}", REQUESTS["b1"], embeddings) for k in range(4)]
    before = [request_of(f"r{k}", REQUESTS["a2"], embeddings) for k in range(1)] + \
             [request_of(f"s{k}", REQUESTS["b2"], embeddings) for k in range(11)]
    c = compare(now, before, {}, config, pinned, 512)
    assert c.doubled == ("停电停水",)
    power = next(r for r in c.rows if r.group.name == "停电停水")
    assert (power.change.now_k, power.change.before_k) == (8, 1) and power.change.marked == "up"


def test_the_reasons_table(tmp_path):
    reasons = [CallReason("c1", "停电停水", 0.71, True, "家里停电了，我的手机号是13905728846", 3.4),
               CallReason("c2", OTHER, 0.0, True, "", None)]
    write_reasons(tmp_path, reasons, {"c1": date(2025, 3, 3), "c2": date(2025, 3, 4)})
    table = read_reasons(tmp_path)
    assert table.schema == REASONS_SCHEMA
    assert sorted(table.column("call_id").to_pylist()) == ["c1", "c2"]
    assert pq.read_schema(tmp_path / "reasons" / "call_date=2025-03-03" / "part-0.parquet").names == \
        ["call_id", "reason", "score", "pinned", "request", "request_at"]
    write_reasons(tmp_path, [reasons[0]], {"c1": date(2025, 3, 3)}, replaces=["c2"])
    assert read_reasons(tmp_path).column("call_id").to_pylist() == ["c1"]


@pytest.mark.parametrize("text, line, message", [
    ("reasons:\n  pinned: []\n", 2, "reasons.pinned must be a non-empty list"),
    ("reasons:\n  pinned:\n    - {name: 其他, examples: [x]}\n", 3, "'其他' is reserved"),
    ("reasons:\n  pinned:\n    - {name: a, examples: [x]}\n    - {name: a, examples: [y]}\n", 4, "named twice"),
    ("reasons:\n  pinned:\n    - {name: a}\n", 3, "needs a name and examples"),
    ("reasons:\n  min_similarity: 2\n", 2, "must be between 0 and 1"),
    ("reasons:\n  grouping: 1\n", 2, "unknown key 'grouping'"),
])
def test_a_bad_reasons_section_is_refused_with_its_line(text, line, message):
    with pytest.raises(PolicyError) as e:
        parse_policy(text, "policy.yaml")
    assert str(e.value).startswith(f"policy.yaml:{line}:") and message in str(e.value)
