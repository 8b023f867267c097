"""Quality measures in numpy: top-k reference, KL divergence with a rest bucket, top-1, perplexity."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from quantize.quality.metrics import compare, log_softmax, perplexity, reference_topk


def _exact_kld(p_logits: npt.NDArray[np.float32], q_logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    lp, lq = log_softmax(p_logits), log_softmax(q_logits)
    result: npt.NDArray[np.float64] = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    return result


def test_log_softmax_normalises_and_is_stable() -> None:
    logits = np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    lp = log_softmax(logits)
    np.testing.assert_allclose(np.exp(lp).sum(axis=-1), [1.0, 1.0])
    np.testing.assert_allclose(lp[0, :2], [np.log(0.5)] * 2)


def test_reference_keeps_sorted_top_k_and_the_rest_mass() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((10, 300)).astype(np.float32) * 3
    targets = rng.integers(0, 300, 10)
    ref = reference_topk(logits, targets, k=16)
    assert ref.ids.shape == ref.logprobs.shape == (10, 16)
    assert np.all(np.diff(ref.logprobs, axis=-1) <= 0)
    np.testing.assert_array_equal(ref.ids[:, 0], logits.argmax(axis=-1))
    full = log_softmax(logits)
    np.testing.assert_allclose(ref.rest, 1 - np.exp(np.sort(full, axis=-1)[:, -16:]).sum(axis=-1), atol=1e-6)
    np.testing.assert_allclose(ref.target_logprob, full[np.arange(10), targets])


def test_identical_models_agree_completely() -> None:
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((20, 500)).astype(np.float32)
    targets = rng.integers(0, 500, 20)
    ref = reference_topk(logits, targets, k=32)
    result = compare(ref, logits, targets)
    np.testing.assert_allclose(result.kld, 0.0, atol=1e-7)
    assert result.top1_match.all()
    assert perplexity(result.target_logprob) == pytest.approx(perplexity(ref.target_logprob))


def test_top_k_plus_rest_is_a_close_lower_bound_of_the_full_kld() -> None:
    rng = np.random.default_rng(2)
    vocab = 4000
    zipf = -1.6 * np.log(np.arange(1, vocab + 1))  # a language model's long tail; top 32 hold ~91% here
    base = np.stack([rng.permutation(zipf) for _ in range(64)]) + rng.standard_normal((64, vocab)) * 0.3
    variant = base + rng.standard_normal((64, vocab)) * 0.5
    targets = rng.integers(0, vocab, 64)
    ref = reference_topk(base.astype(np.float32), targets, k=32)
    approx = compare(ref, variant.astype(np.float32), targets).kld
    exact = _exact_kld(base.astype(np.float32), variant.astype(np.float32))
    assert np.all(approx <= exact + 1e-9)  # merging the tail into one bucket can only lose divergence
    assert approx.mean() == pytest.approx(exact.mean(), rel=0.15)
    assert np.corrcoef(approx, exact)[0, 1] > 0.99


def test_top1_and_perplexity_of_a_known_case() -> None:
    base = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], dtype=np.float32))
    variant = np.log(np.array([[0.2, 0.7, 0.1], [0.1, 0.8, 0.1]], dtype=np.float32))
    targets = np.array([0, 1])
    result = compare(reference_topk(base, targets, k=2), variant, targets)
    assert result.top1_match.tolist() == [False, True]
    expected = 0.7 * np.log(0.7 / 0.2) + 0.2 * np.log(0.2 / 0.7) + 0.1 * np.log(0.1 / 0.1)
    assert result.kld[0] == pytest.approx(expected, rel=1e-5)
    assert result.kld[1] == pytest.approx(0.0, abs=1e-7)
    assert perplexity(result.target_logprob) == pytest.approx(np.exp(-(np.log(0.2) + np.log(0.8)) / 2), rel=1e-5)
    uniform = np.zeros((5, 50), dtype=np.float32)
    assert perplexity(reference_topk(uniform, np.zeros(5, dtype=np.int64), 4).target_logprob) == pytest.approx(50)


def test_reference_is_small_for_a_large_vocabulary() -> None:
    positions, vocab, k = 400, 152_064, 32
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((positions, vocab)).astype(np.float32)
    ref = reference_topk(logits, rng.integers(0, vocab, positions), k)
    stored = ref.ids.nbytes + ref.logprobs.nbytes + ref.rest.nbytes + ref.target_logprob.nbytes
    assert stored < 0.01 * logits.nbytes  # 400 positions: ~0.1 MB instead of 243 MB of logits
