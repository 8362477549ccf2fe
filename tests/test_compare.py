"""Compare mode: every model on the same splits over several seeds, tables, files and plots."""

import csv
import json

import pytest

from hybridrec.experiments.compare import check_compare_config, parse_threshold, run_compare
from hybridrec.config import ConfigError, load_config
from hybridrec.run import main

SMALL = ["data.options={n_users: 300, n_items: 200}", "train.epochs=3", "train.progress=false",
         "data.split=cold_item", "data.split_options={}"]


def small_config(*extra):
    return load_config(overrides=[*SMALL, *extra])


def test_compare_without_text_models(tmp_path):
    cfg = small_config("compare.models=[random, popularity, mf]", "compare.seeds=[0, 1]",
                       "compare.thresholds=[]")
    result, report = run_compare(cfg, tmp_path, progress=False)
    summary = result.summary()
    for model in ("random", "popularity", "mf"):
        for group in ("all", "warm", "cold"):
            row = summary[(summary["model"] == model) & (summary["group"] == group)]
            assert len(row) == 1 and row.iloc[0]["seeds"] == 2
    assert "pop 0" in set(summary["group"]) and len({g for g in summary["group"] if g.startswith("pop ")}) >= 2
    # random ranking of the whole catalogue: Recall@20 near 20 / n_items for every user
    rnd = summary[(summary["model"] == "random") & (summary["group"] == "all")].iloc[0]
    assert 0.5 * 20 / 200 < rnd["recall@20_mean"] < 1.5 * 20 / 200
    pop = summary[(summary["model"] == "popularity") & (summary["group"] == "warm")].iloc[0]
    warm_rnd = summary[(summary["model"] == "random") & (summary["group"] == "warm")].iloc[0]
    assert pop["recall@20_mean"] > 1.5 * warm_rnd["recall@20_mean"]
    assert "mean +- std over 2 seeds" in report and "popularity" in report
    for name in ("per_seed.csv", "summary.csv", "compare.json", "metrics_by_model.png",
                 "recall_by_popularity.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert not (tmp_path / "threshold_sweep.png").exists()
    rows = list(csv.DictReader((tmp_path / "per_seed.csv").open()))
    assert {r["seed"] for r in rows} == {"0", "1"}
    doc = json.loads((tmp_path / "compare.json").read_text())
    assert doc["seeds"] == [0, 1] and set(doc["splits"]) == {"0", "1"}
    # each trained model's epochs and why it stopped, per seed (not for untrained ones)
    assert [(r["model"], r["seed"]) for r in result.training] == [("mf", 0), ("mf", 1)]
    for r in result.training:
        assert 1 <= r["epochs"] <= cfg.train.epochs and r["stop"] in (
            "early stop (patience)", "reached max epochs", "finished", "no validation: last epoch")
        assert r["best_epoch"] is None or 1 <= r["best_epoch"] <= r["epochs"]
    assert "training: epochs run (epoch kept)" in report and doc["training"] == result.training
    assert (tmp_path / "training.csv").stat().st_size > 0


def test_same_seeds_same_table(tmp_path):
    cfg = small_config("compare.models=[popularity, mf]", "compare.seeds=[3]", "compare.thresholds=[]")
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        rows = run_compare(cfg, tmp_path / name, progress=False)[0].rows
        runs.append([{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows])  # timings differ
    assert runs[0] == runs[1]


@pytest.mark.parametrize("override, message", [
    ("compare.models=[popularity, nope]", "valid models"),
    ("compare.models=[]", "empty"),
    ("compare.seeds=[1, 1]", "repeats"),
    ("compare.params={lightgcn: {n_layers: 2}}", "not in compare.models"),
    ("compare.params={mf: {n_layers: 2}}", "not settings of mf"),
    ("compare.thresholds=[10, lots]", "not a number"),
])
def test_bad_compare_settings(override, message):
    cfg = small_config("compare.models=[popularity, mf]", override)
    with pytest.raises((ConfigError, ValueError), match=message):
        check_compare_config(cfg)


def test_threshold_parsing():
    assert parse_threshold("inf") == float("inf") and parse_threshold(".inf") == float("inf")
    assert parse_threshold(50) == 50.0
    with pytest.raises(ConfigError):
        parse_threshold(-1)


@pytest.mark.slow
def test_compare_mode_cli_with_text_models_and_sweep(tmp_path, capsys):
    """The whole mode through the CLI: content and hybrid with the offline text model."""
    args = ["--mode", "compare", "--out-dir", str(tmp_path), "--quiet",
            "--model", "random,content,lightgcn,hybrid"]
    for s in SMALL[:2] + ["compare.seeds=[0, 1]", "compare.thresholds=[0, 100, inf]"]:
        args += ["--set", s]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "hybrid blend threshold sweep" in out and "content" in out
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.startswith("synthetic-compare-")
    for name in ("summary.csv", "sweep.csv", "threshold_sweep.png", "metrics_by_model.png"):
        assert (run_dir / name).stat().st_size > 0, name
    sweep = list(csv.DictReader((run_dir / "sweep.csv").open()))
    assert {r["threshold"] for r in sweep} == {"0", "100", "inf"}
    doc = json.loads((run_dir / "compare.json").read_text())
    rows = {(r["model"], r["group"]): r for r in doc["summary"]}
    # items never trained on: content-based scoring beats random ranking among them
    assert rows[("content", "cold")]["recall@20_mean"] > 1.2 * rows[("random", "cold")]["recall@20_mean"]
    assert rows[("hybrid", "cold")]["recall@20_mean"] > 1.2 * rows[("random", "cold")]["recall@20_mean"]
    # over the whole catalogue the calibrated hybrid is above both of its parts
    main_all = rows[("hybrid", "all")]["recall@20_mean"]
    assert main_all > max(rows[("content", "all")]["recall@20_mean"], rows[("lightgcn", "all")]["recall@20_mean"])


def test_an_interrupted_compare_resumes_where_it_stopped(tmp_path, monkeypatch):
    """Each (model, seed) result is written as it completes; a run started again in the
    same folder skips finished jobs and ends with the same table."""
    import hybridrec.experiments.compare as compare

    cfg = small_config("compare.models=[popularity, mf, lightgcn]", "compare.seeds=[0, 1]", "compare.thresholds=[]")
    full = run_compare(cfg, tmp_path / "full", progress=False)[0]
    real, calls, crash = compare._fit_eval, [], [True]

    def crash_on_seed_1_lightgcn(name, params, split, seed, *rest):
        calls.append((name, seed))
        if (name, seed) == ("lightgcn", 1) and crash[0]:
            raise RuntimeError("killed")
        return real(name, params, split, seed, *rest)

    monkeypatch.setattr(compare, "_fit_eval", crash_on_seed_1_lightgcn)
    with pytest.raises(RuntimeError, match="killed"):
        run_compare(cfg, tmp_path / "run", progress=False)
    assert sorted((p.parent.name, p.stem) for p in (tmp_path / "run" / "jobs").rglob("*.json")) == \
        [("seed0", "lightgcn"), ("seed0", "mf"), ("seed0", "popularity"), ("seed1", "mf"), ("seed1", "popularity")]
    assert {r["seed"] for r in csv.DictReader((tmp_path / "run" / "per_seed.csv").open())} == {"0"}
    crash[0] = False
    calls.clear()
    resumed = run_compare(cfg, tmp_path / "run", progress=False)[0]
    assert calls == [("lightgcn", 1)]  # only the job that had not finished
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("fit_s", "eval_s")} for r in rows]
    assert strip(resumed.rows) == strip(full.rows)
    assert resumed.training == full.training


def test_per_model_training_recipes(tmp_path):
    """compare.train gives each model its own recipe on top of the train section."""
    cfg = small_config("compare.models=[mf, lightgcn]", "compare.seeds=[0]", "compare.thresholds=[]",
                       "train.epochs=4", "train.patience=10", "compare.train={mf: {epochs: 2, lr: 0.01}}")
    result, _ = run_compare(cfg, tmp_path, progress=False)
    epochs = {r["model"]: r["epochs"] for r in result.training}
    assert epochs == {"mf": 2, "lightgcn": 4}
    with pytest.raises(ConfigError, match="compare.train.mf: \\['lrate'\\] are not train settings"):
        check_compare_config(small_config("compare.models=[mf]", "compare.train={mf: {lrate: 1}}"))
    with pytest.raises(ConfigError, match="train.lr must be a finite number > 0"):
        check_compare_config(small_config("compare.models=[mf]", "compare.train={mf: {lr: -1}}"))
    with pytest.raises(ConfigError, match="not in compare.models"):
        check_compare_config(small_config("compare.models=[mf]", "compare.train={ngcf: {lr: 0.1}}"))
