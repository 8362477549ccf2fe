"""LoRA fine-tuning of the LLM ranker: examples from training data only, the loss goes
down, adapters reload to identical scores, and an interrupted run resumes exactly.

Everything runs on the tiny random Llama of ``llm_fakes`` (a few seconds in all).
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from hybridrec.data import Interactions, Vocabulary  # noqa: E402
from hybridrec.llm import FineTuneConfig, LLMRanker, attach_adapter, build_examples, finetune  # noqa: E402
from hybridrec.llm.finetune import find_target_modules  # noqa: E402

from llm_fakes import TITLES, tiny_llm  # noqa: E402

N_USERS, PER_USER = 6, 5  # per user: 4 training items (time order scrambled in the rows), 1 test item


def toy_split(seed: int = 0) -> tuple[Interactions, Interactions]:
    """6 users over the 10 titles: each user's first 4 items by time are training, the 5th test."""
    rng = np.random.default_rng(seed)
    users = Vocabulary([f"u{u}" for u in range(N_USERS)], kind="user")
    items = Vocabulary([f"m{i}" for i in range(len(TITLES))], kind="item")
    table = pd.DataFrame({"title": TITLES, "description": "", "genres": "", "tags": ""})
    rows = {"train": ([], [], []), "test": ([], [], [])}
    for u in range(N_USERS):
        chosen = rng.permutation(len(TITLES))[:PER_USER]
        for t, i in enumerate(chosen):
            part = rows["train" if t < PER_USER - 1 else "test"]
            part[0].append(u), part[1].append(i), part[2].append(100 * u + 10 * t)
    def make(part):
        u, i, ts = (np.array(x) for x in rows[part])
        order = rng.permutation(len(u))  # rows out of time order: the examples must sort them
        return Interactions(u[order], i[order], users, items, timestamps=ts[order], item_table=table, name="toy")
    return make("train"), make("test")


def ranker():
    model, tok = tiny_llm()
    return LLMRanker(model, tokenizer=tok, history_len=3)


def small(**kw) -> FineTuneConfig:
    base = dict(steps=6, lr=5e-3, batch_size=2, n_candidates=4, examples_per_user=2, warmup=1,
                checkpoint_every=2, lora_dropout=0.1, seed=3)
    return FineTuneConfig(**{**base, **kw})


def test_examples_come_from_training_items_only_with_the_target_once():
    train, test = toy_split()
    r = ranker()
    cfg = small()
    examples = build_examples(r, train, cfg)
    seq = {u: train.items[train.users == u][np.argsort(train.timestamps[train.users == u])] for u in range(N_USERS)}
    held_out = {int(u): int(i) for u, i in zip(test.users, test.items)}
    assert len(examples) == N_USERS * cfg.examples_per_user
    for e in examples:
        s = seq[e.user].tolist()
        p = s.index(e.target)
        assert p >= len(s) - cfg.examples_per_user and p >= 1  # a later training item is the target
        assert e.history.tolist() == s[max(0, p - r.history_len):p]  # the items before it, oldest first
        assert held_out[e.user] != e.target and held_out[e.user] not in e.history
        assert len(e.candidates) == cfg.n_candidates and e.candidates.tolist().count(e.target) == 1
        assert e.candidates[e.position] == e.target
        negatives = np.delete(e.candidates, e.position)
        assert not set(negatives.tolist()) & set(s) and len(set(negatives.tolist())) == len(negatives)
    again = build_examples(r, train, cfg)
    assert all(np.array_equal(a.candidates, b.candidates) for a, b in zip(examples, again))
    other = build_examples(r, train, small(seed=4))
    assert any(not np.array_equal(a.candidates, b.candidates) for a, b in zip(examples, other))
    assert len({e.position for e in examples}) > 1  # the target is not always in one place
    assert len({e.user for e in build_examples(r, train, small(max_train_users=2))}) == 2


def test_examples_use_the_rankers_prompt():
    train, _ = toy_split()
    r = ranker()
    e = build_examples(r, train, small())[0]
    prefix, answers, labels = r.build_prompt(e.history, e.candidates)
    assert labels == ["1", "2", "3", "4"] and len(answers) == 4
    text = r.llm[1].decode(prefix)
    assert TITLES[e.history[-1]] in text and TITLES[e.target] in text


def test_loss_is_the_formula_on_what_rank_scores():
    """Answer cross-entropy = minus the mean log-likelihood rank() gives the target; the
    listwise term = minus the log-softmax of rank()'s scores at the target."""
    from hybridrec.llm import continuation_logprobs_naive
    from hybridrec.llm.finetune_data import example_loss

    train, _ = toy_split()
    r = ranker()
    e = build_examples(r, train, small())[0]
    model = r.llm[0]
    prefix, answers, _ = r.build_prompt(e.history, e.candidates)
    lp, n = continuation_logprobs_naive(model, prefix, answers)
    mean = (lp / n).double()
    with torch.no_grad():
        plain, tokens = example_loss(model, r, [e])
        both, _ = example_loss(model, r, [e], listwise=0.5)
    assert tokens == len(prefix) + len(answers[e.position])
    assert abs(float(plain) + float(mean[e.position])) < 1e-4
    expect = -mean[e.position] - 0.5 * torch.log_softmax(mean, 0)[e.position]
    assert abs(float(both) - float(expect)) < 1e-4
    ranked = r.rank([TITLES[i] for i in e.history], [TITLES[i] for i in e.candidates]).scores
    np.testing.assert_allclose(ranked, mean.numpy(), atol=1e-4)  # what rank() scores


def test_training_lowers_the_loss_and_writes_its_cost(tmp_path):
    # The random tiny model's final norm and small output weights bound its logits near
    # uniform (loss about log 400 = 6) unless the output layer is adapted too.
    train, _ = toy_split()
    targets = ("q_proj", "v_proj", "down_proj", "lm_head")
    result = finetune(ranker(), train, small(steps=30, warmup=2, lr=2e-2, target_modules=targets), tmp_path,
                      progress=False)
    first, last = np.mean(result.losses[:3]), np.mean(result.losses[-3:])
    assert len(result.losses) == 30 and last < 0.5 * first, (first, last)
    doc = json.loads((tmp_path / "finetune.json").read_text())
    assert doc["steps"] == 30 and doc["tokens_trained"] > 30 * 2 * 50 and doc["device"] == "cpu"
    assert doc["dtype"] == "float32" and doc["config"]["lr"] == 2e-2 and doc["wall_minutes"] > 0
    assert doc["target_modules"] == list(targets) and doc["losses"] == result.losses
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert not list(tmp_path.glob("**/*.bin")) and not list(tmp_path.glob("**/*.pt"))


def test_label_answers_train_the_choice_among_the_labels(tmp_path):
    """With the label template the answer is "[k]" and its end of turn: the loss is the
    likelihood rank() scores (summed, normalize="sum") per answer token, and it goes down."""
    from hybridrec.llm import continuation_logprobs_naive
    from hybridrec.llm.finetune_data import example_loss

    train, _ = toy_split()
    model, tok = tiny_llm()
    r = LLMRanker(model, tokenizer=tok, history_len=3, template="rank_candidates_label", normalize="sum")
    e = build_examples(r, train, small())[0]
    prefix, answers, labels = r.build_prompt(e.history, e.candidates)
    assert [tok.decode(a) for a in answers] == [f"[{k}]<|im_end|>" for k in labels]
    lp, n = continuation_logprobs_naive(r.llm[0], prefix, answers)
    with torch.no_grad():
        loss, _ = example_loss(r.llm[0], r, [e])
    assert abs(float(loss) + float(lp[e.position] / n[e.position])) < 1e-4
    ranked = r.rank([TITLES[i] for i in e.history], [TITLES[i] for i in e.candidates]).scores
    np.testing.assert_allclose(ranked, lp.numpy(), atol=1e-4)
    targets = ("q_proj", "v_proj", "down_proj", "lm_head")
    result = finetune(r, train, small(steps=30, warmup=2, lr=2e-2, target_modules=targets), tmp_path, progress=False)
    assert np.mean(result.losses[-3:]) < 0.5 * np.mean(result.losses[:3])


def test_listwise_loss_trains_too(tmp_path):
    train, _ = toy_split()
    result = finetune(ranker(), train, small(steps=12, listwise=1.0), tmp_path, progress=False)
    assert np.mean(result.losses[-3:]) < np.mean(result.losses[:3])
    plain = json.loads((tmp_path / "finetune.json").read_text())["tokens_per_step"]
    assert plain > 3 * 2 * 50  # every candidate's answer is run: about n_candidates times the tokens


def test_a_bfloat16_model_trains_float32_adapters(tmp_path):
    """The GPU setting (the ranker's dtype bfloat16), run on the CPU."""
    train, _ = toy_split()
    r = ranker()
    r.llm[0].to(torch.bfloat16)
    result = finetune(r, train, small(steps=2), tmp_path, progress=False)
    assert np.isfinite(result.losses).all() and result.cost["dtype"] == "bfloat16"
    lora = {p.dtype for n, p in r.llm[0].named_parameters() if "lora_" in n}
    assert lora == {torch.float32}
    assert np.isfinite(r.score_candidates(torch.tensor([0]), torch.tensor([[0, 1, 2, 3]])).scores.numpy()).all()


def test_adapters_reload_onto_a_fresh_ranker_with_identical_scores(tmp_path):
    train, _ = toy_split()
    users, cands = torch.tensor([0, 3]), torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    r = ranker().fit(train)
    before = r.score_candidates(users, cands).scores
    finetune(r, train, small(), tmp_path, progress=False)
    after = r.score_candidates(users, cands).scores
    assert not torch.allclose(before, after)  # the adapters change the scores
    doc = json.loads((tmp_path / "finetune.json").read_text())
    assert doc["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    fresh = ranker().fit(train)
    attach_adapter(fresh, tmp_path / "adapter")
    torch.testing.assert_close(fresh.score_candidates(users, cands).scores, after, rtol=0, atol=0)
    assert fresh.settings()["adapter"] == r.settings()["adapter"] and r.settings()["adapter"]["peft_type"] == "LORA"
    with pytest.raises(ValueError, match="already carries LoRA adapters"):
        attach_adapter(fresh, tmp_path / "adapter")
    with pytest.raises(ValueError, match="holds no LoRA adapter"):
        attach_adapter(ranker().fit(train), tmp_path)


def test_an_interrupted_run_resumes_to_identical_weights(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    train, _ = toy_split()
    full = finetune(ranker(), train, small(), tmp_path / "full", progress=False)

    finetune_module = importlib.import_module("hybridrec.llm.finetune")  # the package exports the function
    real_save = finetune_module.save_checkpoint

    def save_then_die(folder, params, opt, cfg, digest, state):
        real_save(folder, params, opt, cfg, digest, state)
        if state["step"] == 4:
            raise KeyboardInterrupt  # the process dies right after its step-4 checkpoint

    monkeypatch.setattr(finetune_module, "save_checkpoint", save_then_die)
    cut = ranker()
    with pytest.raises(KeyboardInterrupt):
        finetune(cut, train, small(), tmp_path / "cut", progress=False)
    monkeypatch.setattr(finetune_module, "save_checkpoint", real_save)
    assert not (tmp_path / "cut" / "adapter").exists()
    assert not any("lora" in name for name, _ in cut.llm[0].named_modules())  # adapters taken off again
    resumed = finetune(cut, train, small(), tmp_path / "cut", progress=False)
    assert resumed.resumed_from == 4 and resumed.losses == full.losses
    a = load_file(str(tmp_path / "full" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="other settings .*lr"):
        finetune(ranker(), train, small(lr=1e-3), tmp_path / "cut", progress=False)
    other = finetune(ranker(), train, small(lr=1e-3), tmp_path / "cut", resume=False, progress=False)
    assert other.resumed_from == 0


@pytest.mark.parametrize("bad, match", [
    (dict(lr=0), "lr"), (dict(lr=2.0), "lr"), (dict(steps=0), "steps"), (dict(epochs=0), "epochs"),
    (dict(batch_size=0), "batch_size"), (dict(grad_accum=0), "grad_accum"), (dict(lora_r=0), "lora_r"),
    (dict(lora_alpha=0), "lora_alpha"), (dict(lora_dropout=1.0), "lora_dropout"),
    (dict(n_candidates=1), "n_candidates"), (dict(examples_per_user=0), "examples_per_user"),
    (dict(max_train_users=0), "max_train_users"), (dict(checkpoint_every=0), "checkpoint_every"),
    (dict(warmup=-1), "warmup"), (dict(target_modules=[]), "target_modules"), (dict(listwise=-1), "listwise"),
])
def test_bad_settings_are_clear_errors(bad, match):
    with pytest.raises(ValueError, match=f"FineTuneConfig.{match} must be"):
        FineTuneConfig(**bad)


def test_config_round_trips_and_rejects_unknown_keys():
    cfg = small(target_modules=("q_proj", "v_proj"))
    assert FineTuneConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown fine-tuning setting.*'learning_rate'"):
        FineTuneConfig.from_dict({"learning_rate": 1e-3})


def test_too_few_unseen_items_or_missing_targets_are_clear_errors(tmp_path):
    train, _ = toy_split()
    with pytest.raises(ValueError, match="n_candidates=20"):
        build_examples(ranker(), train, small(n_candidates=20))
    with pytest.raises(ValueError, match=r"target_modules \['wq'\] found"):
        finetune(ranker(), train, small(target_modules=["wq"]), tmp_path, progress=False)
    with pytest.raises(ValueError, match="out_dir"):
        finetune(ranker(), train, small())


def test_a_model_without_lora_targets_is_a_clear_error():
    class Mixer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mixer = torch.nn.Linear(4, 4)
            self.norm = torch.nn.LayerNorm(4)

    with pytest.raises(ValueError, match=r"none of the usual projection names found among its linear layers \['mixer'\]"):
        find_target_modules(Mixer())
    assert find_target_modules(Mixer(), ["mixer"]) == ["mixer"]


def test_negatives_come_from_items_with_a_training_interaction_unless_told_otherwise():
    """An item no one chose in training would otherwise only ever be a negative."""
    train, _ = toy_split()
    keep = ~np.isin(train.items, [8, 9])
    train = Interactions(train.users[keep], train.items[keep], train.user_vocab, train.item_vocab,
                         timestamps=train.timestamps[keep], item_table=train.item_table, name="toy")
    never = {int(i) for i in np.flatnonzero(train.item_counts() == 0)}
    assert {8, 9} <= never
    for seed in range(5):
        for e in build_examples(ranker(), train, small(seed=seed)):
            assert not set(np.delete(e.candidates, e.position).tolist()) & never
    drawn = {int(i) for seed in range(5) for e in build_examples(ranker(), train, small(seed=seed, negatives="all"))
             for i in np.delete(e.candidates, e.position)}
    assert drawn & never
    with pytest.raises(ValueError, match="FineTuneConfig.negatives must be"):
        small(negatives="cold")


def test_examples_are_cut_from_the_rankers_own_sequences():
    train, _ = toy_split()
    r = ranker().fit(train)
    for e in build_examples(r, train, small()):
        seq = r.user_sequence(e.user).tolist()
        p = seq.index(e.target)
        assert e.history.tolist() == seq[max(0, p - r.history_len):p]
    other = Interactions(train.users[:-1], train.items[:-1], train.user_vocab, train.item_vocab,
                         timestamps=train.timestamps[:-1], item_table=train.item_table, name="toy")
    with pytest.raises(ValueError, match="fitted on other training interactions"):
        build_examples(r, other, small())


@pytest.mark.parametrize("graph", [False, True])
def test_a_saved_fine_tuned_ranker_carries_its_adapters_and_scores_identically(tmp_path, graph):
    from safetensors.torch import load_file

    from hybridrec.models import load_model

    from llm_fakes import save_tiny_llm

    train, _ = toy_split()
    folder = save_tiny_llm(tmp_path / "tiny-llm")
    prompt = dict(template="rank_candidates_graph", evidence="cooccurrence") if graph else {}
    r = LLMRanker(folder, history_len=3, **prompt).fit(train)
    users, cands = torch.tensor([0, 3]), torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    base = r.score_candidates(users, cands).scores
    assert r.settings()["adapter"] is None
    finetune(r, train, small(lora_r=4, target_modules=("q_proj", "v_proj")), tmp_path / "ft", progress=False)
    tuned = r.score_candidates(users, cands).scores
    assert not torch.allclose(base, tuned)
    adapter = r.settings()["adapter"]
    assert adapter == {"peft_type": "LORA", "r": 4, "lora_alpha": 16.0, "lora_dropout": 0.1,
                       "target_modules": ["q_proj", "v_proj"], "bias": "none"}

    r.save(tmp_path / "ranker")
    saved = load_file(str(tmp_path / "ranker" / "weights.safetensors"))
    lora = sorted(k for k in saved if k.startswith("adapter."))
    assert len(lora) == 2 * 2 * 2 and all(".lora_A." in k or ".lora_B." in k for k in lora)  # layers x q,v x A,B
    assert not list((tmp_path / "ranker").glob("**/*.bin")) and not list((tmp_path / "ranker").glob("**/*.pt"))
    loaded = load_model(tmp_path / "ranker")
    assert loaded.settings() == r.settings()
    torch.testing.assert_close(loaded.score_candidates(users, cands).scores, tuned, rtol=0, atol=0)

    load_model(tmp_path / "ranker").save(tmp_path / "again")  # saved again before its model ever loaded
    torch.testing.assert_close(load_model(tmp_path / "again").score_candidates(users, cands).scores, tuned,
                               rtol=0, atol=0)
    with pytest.raises(ValueError, match="already carries LoRA adapters"):
        finetune(loaded, train, small(), tmp_path / "ft2", progress=False)
    by_hand = LLMRanker(folder, history_len=3, adapter=adapter, **prompt).fit(train)
    with pytest.raises(ValueError, match="without adapter weights"):
        by_hand.score_candidates(users, cands)
    config = json.loads((tmp_path / "again" / "config.json").read_text())
    config["settings"]["adapter"]["r"] = 2  # settings that disagree with the saved weights
    (tmp_path / "again" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="do not fit adapter"):
        load_model(tmp_path / "again").score_candidates(users, cands)
