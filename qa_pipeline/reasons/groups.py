"""Requests grouped by meaning, and each group named by its top words.

Grouping is a leader pass then REFINE_PASSES of k-means-style refinement on unit vectors, in the
order given (the caller sorts by call id, so a period groups the same way every time): a request
joins the group whose centre it is most similar to when that reaches ``similarity``, else it starts
a group; centres are then the mean of their members and every request moves to its closest centre
(staying alone when none reaches ``similarity``). A group of fewer than MIN_GROUP requests is not a
reason of its own (其他).

A group is named by the three nouns or verbs (jieba's part-of-speech tags) that are most frequent in
its requests and least frequent in the period's other requests (tf-idf), with the small words of
any request (你好, 我想, 一下 …) left out.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

from qa_pipeline.models import cache_root
from qa_pipeline.parallel import map_chunks

MIN_GROUP = 2
NUMERALS = set("零〇一二三四五六七八九十百千万两幺半几")  # 三天, 一点多, 两百: amounts, not topics
REFINE_PASSES = 3
NAME_WORDS = 3
STOPWORDS = frozenset("""
你好 您好 喂 我 我们 你 您 你们 他 她 它 他们 的 了 是 想 想要 要 一下 问 问问 请问 这个 那个 这 那 怎么 怎么办
什么 吗 呢 啊 吧 呀 嘛 哦 就 都 还 也 在 有 没有 没 给 帮 帮忙 能 能不能 可以 会 对 好 好的 就是 然后 现在 今天
昨天 一个 一直 已经 还是 但是 可是 因为 所以 如果 这样 那样 为什么 多少 几 哪 哪里 这边 那边 一点 一些 自己 家
麻烦 谢谢 您好啊 是不是 有没有 到底 过来 出来 一 下 个 说 看 去 来 让 把 被 又 再 很 太 挺 比较 真的 其实 上 里
我家 不了 开始 上个月 下个月 这个月 时候 情况 问题 事情 一次 这次 上次 东西 时间 电话 客服
""".split())


def group(vectors: np.ndarray, similarity: float) -> list[int]:
    """A group number per row of `vectors` (unit rows), -1 for a request in no group of MIN_GROUP+."""
    n = len(vectors)
    if n == 0:
        return []
    centres: list[np.ndarray] = []
    labels = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        if centres:
            sims = np.vstack(centres) @ vectors[i]
            k = int(sims.argmax())
            if sims[k] >= similarity:
                labels[i] = k
                continue
        centres.append(vectors[i].copy())
        labels[i] = len(centres) - 1
    for _ in range(REFINE_PASSES):
        matrix = _centres(vectors, labels, len(centres))
        sims = vectors @ matrix.T
        best = sims.argmax(axis=1)
        moved = np.where(sims[np.arange(n), best] >= similarity, best, labels)
        if np.array_equal(moved, labels):
            break
        labels = moved
    sizes = Counter(labels.tolist())
    # numbered by size (largest first), then by first member: stable names for a stable input
    order = sorted((k for k, c in sizes.items() if c >= MIN_GROUP), key=lambda k: (-sizes[k], int(np.argmax(labels == k))))
    renumber = {k: j for j, k in enumerate(order)}
    return [renumber.get(int(k), -1) for k in labels]


def _centres(vectors: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((k, vectors.shape[1]), dtype=np.float32)
    np.add.at(out, labels, vectors)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def centres(vectors: np.ndarray, labels: Sequence[int], k: int) -> np.ndarray:
    """Each group's centre (unit length); rows of -1 belong to none."""
    keep = np.asarray(labels) >= 0
    return _centres(vectors[keep], np.asarray(labels)[keep], k)


@lru_cache(maxsize=1)
def _tokenizer():
    import jieba  # lazy: loads its dictionary (about a second), cached under our cache folder

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    folder = cache_root() / "jieba"
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.tmp_dir = str(folder)  # jieba writes its dictionary cache to /tmp otherwise
    return tokenizer


@lru_cache(maxsize=1)
def _tagger():
    from jieba import posseg

    class Tagger(posseg.POSTokenizer):
        """jieba's tagger on our tokenizer, with the tags of the dictionary they share (jieba's
        default): read once by jieba.posseg's own tagger when it was imported, not a second time."""

        def __init__(self, tokenizer) -> None:
            self.tokenizer = tokenizer
            self.word_tag_tab = dict(posseg.dt.word_tag_tab)

    tokenizer = _tokenizer()
    if tokenizer.dictionary != posseg.dt.tokenizer.dictionary:
        return posseg.POSTokenizer(tokenizer)
    return Tagger(tokenizer)


CONTENT_TAGS = ("n", "v", "vn", "nz", "ng", "an", "eng")  # nouns and verbs: what a reason is about


_LEARNT: dict[str, tuple[str, ...]] = {}  # words() of the texts learn_words() was given
_LEARNT_MAX = 200_000
MIN_PARALLEL = 500  # fewer requests: words() finds them one at a time, no workers to start


def words(text: str) -> tuple[str, ...]:
    """The content words of a request: nouns and verbs of 2+ characters (jieba's tags, its dictionary
    only: no HMM guesses at unknown words, which Whisper's garbles mostly are), no digits or numerals,
    no small words."""
    found = _LEARNT.get(text)
    return found if found is not None else _words(text)


def learn_words(texts: Iterable[str]) -> None:
    """Find the words of many requests at once, on every core (jieba tags in pure Python, about a
    millisecond a request); words() then only looks them up."""
    missing = sorted(set(texts) - _LEARNT.keys())
    if len(missing) < MIN_PARALLEL:
        return
    if len(_LEARNT) + len(missing) > _LEARNT_MAX:
        _LEARNT.clear()
    _tagger().tokenizer.check_initialized()  # its dictionary loaded here, before the workers fork: each would load it again
    _LEARNT.update(zip(missing, map_chunks(_words_of, missing, min_items=MIN_PARALLEL)))


def _words_of(texts: Sequence[str]) -> list[tuple[str, ...]]:
    return [_words(t) for t in texts]


@lru_cache(maxsize=65536)
def _words(text: str) -> tuple[str, ...]:
    return tuple(p.word for p in _tagger().lcut(text, HMM=False)
            if p.flag in CONTENT_TAGS and len(p.word) >= 2 and p.word not in STOPWORDS and p.word[0] not in "不没别"
            and not any(ch.isdigit() or ch in NUMERALS for ch in p.word) and all(ch.isalnum() for ch in p.word))


def name_groups(texts: Sequence[str], labels: Sequence[int]) -> dict[int, str]:
    """Each group's name: its top words, joined with ·; a name given twice gets （2）, （3）…"""
    docs = [set(words(t)) for t in texts]
    df = Counter(w for d in docs for w in d)
    n = len(docs)
    names: dict[int, str] = {}
    seen: Counter = Counter()
    for k in sorted({l for l in labels if l >= 0}):
        tf = Counter(w for d, l in zip(docs, labels) if l == k for w in d)
        scored = sorted(tf, key=lambda w: (-tf[w] * math.log((n + 1) / (df[w] + 1) + 1.0), w))
        name = "·".join(scored[:NAME_WORDS]) or f"第{k + 1}组"
        seen[name] += 1
        names[k] = name if seen[name] == 1 else f"{name}（{seen[name]}）"
    return names
