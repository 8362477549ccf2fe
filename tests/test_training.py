import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hybridrec.train import UniformNegativeSampler, bpr_loss, build_sampler, l2_penalty


def test_bpr_loss_known_answer():
    # -ln sigmoid(2 - 0) = ln(1 + e^-2) = 0.126928; -ln sigmoid(0) = ln 2 = 0.693147
    loss = bpr_loss(torch.tensor([2.0, 1.0]), torch.tensor([0.0, 1.0]))
    assert loss.item() == pytest.approx((0.126928 + 0.693147) / 2, abs=1e-5)


def test_l2_penalty_known_answer():
    # batch of 2: (1 + 4) + (9 + 0) + (0 + 1) = 15 -> 15 / (2 * 2)
    u = torch.tensor([[1.0], [2.0]])
    i = torch.tensor([[3.0], [0.0]])
    j = torch.tensor([[0.0], [1.0]])
    assert l2_penalty(u, i, j).item() == pytest.approx(15 / 4)


def test_uniform_sampler_never_returns_positives():
    rng = np.random.default_rng(0)
    dense = rng.random((50, 30)) < 0.6  # dense rows: many rejections needed
    train = sp.csr_matrix(dense.astype(np.float32))
    s = UniformNegativeSampler(train)
    users = torch.as_tensor(np.repeat(np.arange(50), 40))
    neg = s.sample(users, torch.Generator().manual_seed(0))
    assert not dense[users.numpy(), neg.numpy()].any()
    assert len(torch.unique(neg)) > 20  # spread over the catalogue, not one fallback item
    again = s.sample(users, torch.Generator().manual_seed(0))
    assert torch.equal(neg, again)


def test_sampler_rejects_user_with_every_item():
    train = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="every item"):
        UniformNegativeSampler(train)


def test_unknown_sampler_lists_valid():
    with pytest.raises(ValueError, match="valid: \\['hard', 'uniform'\\]"):
        build_sampler("magic", sp.csr_matrix((2, 2)))


def test_hard_sampler_picks_highest_scoring_non_positive():
    # one user, items 0..5; item 0 is a positive; item 5 has the largest score
    train = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0]], dtype=np.float32))
    sampler = build_sampler("hard", train, pool_size=200)
    user_emb = torch.tensor([[1.0]])
    item_emb = torch.tensor([[100.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    neg = sampler.sample(torch.zeros(64, dtype=torch.long), torch.Generator().manual_seed(0),
                         user_emb=user_emb, item_emb=item_emb)
    assert (neg == 5).all()  # never the positive item 0, always the top-scoring negative
    uniform = build_sampler("uniform", train).sample(torch.zeros(2000, dtype=torch.long), torch.Generator().manual_seed(0))
    assert set(uniform.tolist()) == {1, 2, 3, 4, 5}
