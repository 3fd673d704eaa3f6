"""The sentence encoder behind our interface, and the embedding cache."""

import numpy as np
import pytest

from qa_pipeline.meaning.cache import EmbeddingCache
from qa_pipeline.meaning.encoder import load_encoder

TEXTS = ["您好，请问有什么可以帮您", "这事我可做不了主，反正就这么定的", "就是想问下明天几点能到"]


def test_vectors_are_unit_rows():
    enc = load_encoder()
    together = enc.encode(TEXTS)
    assert together.shape == (3, enc.dim) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_meaning_is_closer_than_other_meaning():
    enc = load_encoder()
    a, b, c = enc.encode(["这是公司规定，我也没办法", "规定就是这样，我们管不了", "请问还有其他可以帮您的吗"])
    assert a @ b > a @ c + 0.2


def test_a_set_of_texts_gets_the_same_vectors_cold_warm_and_in_any_order(tmp_path):
    enc = load_encoder()
    cold = EmbeddingCache(enc, tmp_path).vectors(TEXTS + TEXTS[:1])
    warm = EmbeddingCache(enc, tmp_path).vectors(list(reversed(TEXTS)))
    assert np.array_equal(cold[:3], warm[::-1]) and np.array_equal(cold[0], cold[3])
    assert np.array_equal(EmbeddingCache(enc, None).vectors(TEXTS), cold[:3])  # in memory: same rounding
    assert len(list(tmp_path.glob("*.sqlite"))) == 1


def test_a_set_is_encoded_alone_so_other_texts_do_not_move_its_vectors():
    cache = EmbeddingCache(load_encoder(), None)
    alone = cache.vectors(TEXTS)
    cache.vectors(TEXTS + ["好的", "请稍等"])  # another call's batch, sharing texts
    assert np.array_equal(cache.vectors(TEXTS), alone)


def test_unknown_encoder_is_one_line():
    with pytest.raises(ValueError, match="unknown sentence encoder 'nope'; choose one of: e5-small, use-m3"):
        load_encoder("nope")


def test_one_cache_serves_the_threads_of_a_process(tmp_path):
    """A Ray actor scores two calls at once in two threads, through one process-wide cache."""
    import threading

    cache = EmbeddingCache(load_encoder(), tmp_path)
    got, errors = {}, []

    def work(n: int) -> None:
        try:
            got[n] = cache.vectors([TEXTS[n], "好的"])
        except Exception as e:  # noqa: BLE001 - the test reports any
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 3
    assert np.array_equal(got[0], EmbeddingCache(load_encoder(), tmp_path).vectors([TEXTS[0], "好的"]))


def test_a_cache_with_a_file_keeps_few_batches_in_memory_and_finds_the_rest_in_the_file(tmp_path, monkeypatch):
    """A night of many calls does not grow a worker by every call's vectors; what memory let go
    comes back from the file, the same bits, without encoding again."""
    from qa_pipeline.meaning import cache as cache_module

    monkeypatch.setattr(cache_module, "MEMORY_BATCHES", 2)
    enc = load_encoder()
    cache = EmbeddingCache(enc, tmp_path)
    first = cache.vectors(TEXTS)
    for n in range(5):
        cache.vectors([f"第{n}通电话", "好的"])
    assert len(cache._memory) == 2
    unbounded = EmbeddingCache(enc, None)  # without a file, memory is the only store
    for n in range(5):
        unbounded.vectors([f"第{n}通电话"])
    assert len(unbounded._memory) == 5
    monkeypatch.setattr(enc, "encode", lambda texts: pytest.fail("encoded again"))
    assert np.array_equal(cache.vectors(TEXTS), first)
