"""Ranking primitives: the chunked top-K equals torch.topk; counts and first ranks."""

import pytest
import torch

from hybridrec.eval import ranking as R


@pytest.mark.parametrize("n", [5000, 5003, 100])
def test_chunked_topk_matches_torch_topk(n):
    g = torch.Generator().manual_seed(n)
    s = torch.randn(7, n, generator=g)
    s[0, : n // 2] = float("-inf")  # masked items
    top = R.topk_indices(s, 20)
    ref = torch.topk(s, 20, dim=1)
    assert torch.equal(top, ref.indices)  # no ties: same items in the same order
    assert torch.equal(s.gather(1, top), ref.values)


def test_chunked_topk_with_ties_returns_topk_values():
    g = torch.Generator().manual_seed(1)
    s = torch.randint(0, 5, (6, 4000), generator=g).float()  # heavy ties
    top = R.topk_indices(s, 25)
    assert torch.equal(s.gather(1, top), torch.topk(s, 25, dim=1).values)
    assert all(len(set(row.tolist())) == 25 for row in top)  # distinct items


def test_chunked_topk_is_row_independent():
    g = torch.Generator().manual_seed(2)
    s = torch.randint(0, 3, (8, 3000), generator=g).float()
    batch = R.topk_indices(s, 10)
    one_by_one = torch.cat([R.topk_indices(s[i : i + 1].clone(), 10) for i in range(8)])
    assert torch.equal(batch, one_by_one)


def test_count_greater():
    s = torch.tensor([[3.0, 1.0, 2.0, float("-inf")], [0.0, 0.0, 1.0, 5.0]])
    # row 0: above 1.0 -> {3, 2} = 2; row 1: above 0.0 -> {1, 5} = 2 (ties not counted)
    assert R.count_greater(s, torch.tensor([1.0, 0.0])).tolist() == [2, 2]
    buf = torch.empty_like(s)
    assert R.count_greater(s, torch.tensor([-1.0, 5.0]), out=buf).tolist() == [3, 0]


def test_best_target_score_and_is_target():
    s = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.7]])
    rows, cols = torch.tensor([0, 0]), torch.tensor([0, 2])  # row 1 has no target
    best = R.best_target_score(s, rows, cols)
    assert best[0] == 0.5 and best[1] == float("-inf")
    keys = rows * 3 + cols  # sorted
    top = torch.tensor([[1, 2], [2, 0]])
    assert R.is_target(keys, torch.tensor([0, 1]), top, 3).tolist() == [[False, True], [False, False]]


def test_first_relevant_rank():
    hits = torch.tensor([[False, True, True], [False, False, False], [False, False, False]])
    n_greater = torch.tensor([0, 10, 1])
    # row 0: first hit at rank 2; row 1: 10 items above -> rank 11;
    # row 2: 1 item above (a tie pushed the target out of the list) -> at least K + 1 = 4
    assert R.first_relevant_rank(hits, n_greater).tolist() == [2, 11, 4]
