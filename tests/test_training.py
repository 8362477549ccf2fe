"""Training: losses, negative samplers, the shared loop (fit_loop) and steps plugged into it."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from hybridrec.config import TrainConfig
from hybridrec.train import (UniformNegativeSampler, bpr_loss, build_sampler, fit_loop, l2_penalty,
                             minibatch_epoch, parse_metric)


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


def test_parse_metric():
    assert parse_metric("recall@20") == ("recall", 20)
    assert parse_metric("mrr") == ("mrr", 1)
    with pytest.raises(ValueError, match="recall@20"):
        parse_metric("recall@twenty")


def _scripted(values):
    """A module whose weight is set to the epoch number by its run_epoch, and a validate
    returning ``values`` in turn; both record the mode the module was in."""
    module = nn.Linear(1, 1, bias=False)
    modes, calls = [], []

    def run_epoch(epoch):
        modes.append(("epoch", module.training))
        with torch.no_grad():
            module.weight.fill_(epoch)
        return {"loss": 1.0 / epoch}

    def validate():
        modes.append(("valid", module.training))
        calls.append(module.weight.item())
        return values[len(calls) - 1]

    return module, run_epoch, validate, modes, calls


def test_fit_loop_stops_after_patience_and_restores_the_best_epoch():
    module, run_epoch, validate, modes, calls = _scripted([0.1, 0.3, 0.2, 0.2])
    cfg = TrainConfig(epochs=10, eval_every=1, patience=2, valid_metric="ndcg@5", progress=False)
    hist = fit_loop(module, run_epoch, cfg, validate=validate)
    assert [r["epoch"] for r in hist.rows] == [1, 2, 3, 4]  # epochs 3 and 4 are the two bad evaluations
    assert [list(r) for r in hist.rows] == [["epoch", "loss", "seconds", "ndcg@5"]] * 4
    assert [r["ndcg@5"] for r in hist.rows] == [0.1, 0.3, 0.2, 0.2]
    assert hist.losses() == [1.0, 0.5, 1 / 3, 0.25]
    assert (hist.best_epoch, hist.best_value, hist.stopped_early) == (2, 0.3, True)
    assert calls == [1.0, 2.0, 3.0, 4.0]  # validation sees the weights after each epoch
    assert module.weight.item() == 2.0 and not module.training  # the epoch-2 weights, in eval mode
    assert modes == [("epoch", True), ("valid", False)] * 4
    assert hist.to_dict()["best_epoch"] == 2 and hist.seconds >= hist.rows[-1]["seconds"] > 0


def test_fit_loop_validates_every_eval_every_epochs_and_keeps_the_last_without_validation():
    module, run_epoch, validate, _, calls = _scripted([0.2, 0.1, 0.3])
    cfg = TrainConfig(epochs=5, eval_every=2, patience=5, progress=False)
    hist = fit_loop(module, run_epoch, cfg, validate=validate)
    assert ["recall@20" in r for r in hist.rows] == [False, True, False, True, False]
    assert calls == [2.0, 4.0] and hist.best_epoch == 2 and module.weight.item() == 2.0
    assert not hist.stopped_early

    module, run_epoch, _, _, _ = _scripted([])
    hist = fit_loop(module, run_epoch, TrainConfig(epochs=3, progress=False))
    assert (hist.best_epoch, hist.best_value, module.weight.item()) == (3, None, 3.0)
    assert [list(r) for r in hist.rows] == [["epoch", "loss", "seconds"]] * 3


class TinyMF(nn.Module):
    def __init__(self, n_users, n_items, dim=4):
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)

    def forward(self, users, items):
        return (self.user(users) * self.item(items)).sum(-1)


def test_a_pointwise_step_plugs_into_the_loop_and_learns():
    # two blocks: users 0..9 take items 0..9, users 10..19 items 10..19
    users = torch.arange(20).repeat_interleave(10)
    items = (users // 10) * 10 + torch.arange(10).repeat(20)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    module = TinyMF(20, 20)

    def bce_step(rows):
        u, p = users[rows], items[rows]
        n = (1 - p // 10) * 10 + torch.randint(10, p.shape, generator=gen)  # an item of the other block
        logits = torch.cat([module(u, p), module(u, n)])
        return F.binary_cross_entropy_with_logits(logits, torch.cat([torch.ones(len(u)), torch.zeros(len(u))]))

    cfg = TrainConfig(epochs=30, batch_size=32, progress=False)
    opt = torch.optim.Adam(module.parameters(), lr=0.05)
    hist = fit_loop(module, minibatch_epoch(bce_step, opt, len(users), cfg.batch_size, generator=gen), cfg)
    losses = hist.losses()
    assert len(losses) == 30 and hist.best_epoch == 30
    assert losses[-1] < 0.1 * losses[0]
    with torch.no_grad():
        scores = module.user.weight @ module.item.weight.T
    assert (scores[:10, :10].min() > scores[:10, 10:].max()) and (scores[10:, 10:].min() > scores[10:, :10].max())


def test_lr_halves_every_n_epochs_and_the_epoch_alone_sets_it():
    from hybridrec.config import ConfigError

    cfg = TrainConfig(lr=0.1, lr_halve_every=2)
    assert [cfg.lr_at(e) for e in range(1, 6)] == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert TrainConfig(lr=0.1).lr_at(50) == 0.1
    with pytest.raises(ConfigError, match="lr_halve_every"):
        TrainConfig(lr_halve_every=-1)
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=1.0)
    seen = []
    run = minibatch_epoch(lambda rows: (seen.append(opt.param_groups[0]["lr"]) or w.sum()), opt, 4, 2,
                          generator=torch.Generator().manual_seed(0), lr_at=cfg.lr_at)
    run(3)   # an epoch run alone (as after a resume) takes its own rate, whatever came before
    run(1)
    assert seen == [0.05, 0.05, 0.1, 0.1]
