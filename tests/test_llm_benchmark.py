"""The LLM candidate benchmark's statistics: bootstrap intervals and per-user metrics on known cases."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "llm_candidates.py"
    spec = importlib.util.spec_from_file_location("llm_candidates_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_constant_values_give_a_zero_width_interval(bench):
    lo, hi = bench.bootstrap_interval(np.full(300, 0.4), resamples=2000, seed=0)
    assert lo == hi and abs(lo - 0.4) < 1e-12


def test_two_values_resample_to_the_whole_range(bench):
    # the mean of 2 draws from {0, 1} is 0, 1/2 or 1 with chances 1/4, 1/2, 1/4: the 2.5% and 97.5%
    # quantiles of 2000 such means are 0 and 1
    assert bench.bootstrap_interval([0.0, 1.0], resamples=2000, seed=0) == (0.0, 1.0)
    assert all(math.isnan(v) for v in bench.bootstrap_interval([], seed=0))


def test_interval_is_the_percentile_bootstrap_of_the_mean(bench):
    x = np.random.default_rng(7).random(50)
    rng = np.random.default_rng(3)
    means = x[rng.integers(0, 50, size=(2000, 50))].mean(1)  # the recipe, written out with numpy
    expect = np.quantile(means, [0.025, 0.975])
    np.testing.assert_allclose(bench.bootstrap_interval(x, 2000, seed=3), expect, rtol=0, atol=1e-12)
    # and, for a large sample, close to the normal interval mean +- 1.96 standard errors
    y = (np.random.default_rng(1).random(400) < 0.3).astype(float)
    se = y.std(ddof=1) / math.sqrt(len(y))
    lo, hi = bench.bootstrap_interval(y, 2000, seed=0)
    assert abs(lo - (y.mean() - 1.96 * se)) < 0.008 and abs(hi - (y.mean() + 1.96 * se)) < 0.008
    assert bench.bootstrap_interval(x, 2000, seed=3) != bench.bootstrap_interval(x, 2000, seed=4)


def test_per_user_metrics_from_the_targets_rank(bench):
    # targets at ranks 1, 3, 11 and 2 (a tie with the candidate listed first)
    scores = torch.tensor([[5.0, 1, 0] + [0] * 9, [3.0, 2, 1] + [0] * 9, list(range(12, 0, -1)),
                           [1.0, 1, 0] + [0] * 9], dtype=torch.float64)
    target_pos = torch.tensor([0, 2, 10, 1])
    m = bench.per_user_metrics(scores, target_pos)
    np.testing.assert_allclose(m["ndcg@10"], [1.0, 0.5, 0.0, 1 / math.log2(3)])
    np.testing.assert_array_equal(m["hitrate@10"], [1, 1, 0, 1])
    np.testing.assert_allclose(m["mrr"], [1, 1 / 3, 1 / 11, 1 / 2])
