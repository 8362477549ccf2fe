"""The package outside the checkout: shipped prompts and configs, the console script, config
parsing a user expects (``1e-3``), early checks, run-folder permissions and versions, and
progress bars that stay out of logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hybridrec.config import Config, ConfigError, load_config, load_yaml
from hybridrec.support.progress import show_progress
from hybridrec.support.resources import find_config, list_configs, shipped_dir

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--dataset", "synthetic", "--set", "data.options={n_users: 200, n_items: 150}",
         "--set", "train.epochs=2", "--quiet"]


def test_every_package_is_listed_in_pyproject():
    """The wheel lists its packages by hand (to map prompts/ and configs/ into it): a new
    subpackage missing from the list would be left out of the wheel."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "hybridrec").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
    assert {"hybridrec.prompts", "hybridrec.configs"} <= listed


def test_shipped_prompts_and_configs_are_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here: the shipped ones are used
    assert (shipped_dir("prompts") / "rank_candidates.v1.txt").is_file()
    assert {"default", "gowalla", "ml-100k"} <= set(list_configs())
    for name in ("configs/gowalla.yaml", "gowalla.yaml", "gowalla"):
        assert find_config(name) == shipped_dir("configs") / "gowalla.yaml"
    assert load_config(["configs/ml-100k.yaml"]).data.dataset == "ml-100k"
    with pytest.raises(ConfigError, match="shipped configs: .*gowalla"):
        load_config(["configs/nonesuch.yaml"])


def test_a_local_file_and_a_user_folder_override_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "gowalla.yaml").write_text("train: {epochs: 7}\n")
    assert load_config(["configs/gowalla.yaml"]).train.epochs == 7
    prompts = tmp_path / "my-prompts"
    prompts.mkdir()
    (prompts / "mine.v1.txt").write_text("[user]\n{candidates}\n[candidate_item]\n{label}\n[answer]\n{label}\n")
    monkeypatch.setenv("HYBRIDREC_PROMPTS", str(prompts))
    from hybridrec.llm import load_template

    assert load_template("mine").name == "mine.v1"


def test_default_yaml_is_the_real_defaults():
    assert load_config([REPO / "configs" / "default.yaml"]).to_dict() == Config().to_dict()


@pytest.mark.parametrize("text, value", [("1e-3", 1e-3), ("1.0e-3", 1e-3), ("-2E+5", -2e5), ("3", 3),
                                         ("0.5", 0.5), (".inf", float("inf")), ("1_000", 1000), ("e5", "e5")])
def test_yaml_reads_scientific_notation_as_numbers(text, value):
    assert load_yaml(f"x: {text}")["x"] == value


def test_lr_1e_3_on_the_command_line_and_in_yaml(tmp_path):
    assert load_config([], ["train.lr=1e-3"]).train.lr == pytest.approx(1e-3)
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 5e-4\n  l2: 1E-6\n")
    cfg = load_config([f])
    assert (cfg.train.lr, cfg.train.l2) == (pytest.approx(5e-4), pytest.approx(1e-6))
    with pytest.raises(Exception, match="could not determine a constructor|ConstructorError|python"):
        load_yaml("x: !!python/object/apply:os.system ['true']")


def _run(code: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


@pytest.mark.parametrize("args, message", [
    (["--model", "foo"], "unknown model 'foo'"),
    (["--dataset", "movielens"], "unknown data set 'movielens'"),
    (["--mode", "compare", "--model", "mf,nope"], "unknown model 'nope'"),
    (["--mode", "hybrid", "--new-items", "missing.csv"], "no such file"),
    (["--top-k", "0", "--mode", "hybrid"], "--top-k must be >= 1"),
])
def test_bad_names_fail_before_torch_is_imported_and_leave_no_run_folder(tmp_path, args, message):
    """The name checks run before anything heavy (no torch import: well under a second)
    and before the run folder exists."""
    code = (f"import sys; from hybridrec.run import main; rc = main({args!r} + ['--out-dir', 'runs']); "
            "print('torch' in sys.modules, rc)")
    out = _run(code, tmp_path)
    assert out.stdout.split() == ["False", "2"], out.stderr
    assert message in out.stderr
    assert not (tmp_path / "runs").exists()


def test_run_folder_is_readable_by_others_and_records_versions(tmp_path):
    code = ("import os; os.umask(0o022); from hybridrec.run import main; "
            f"raise SystemExit(main(['--model', 'mf', *{SMALL!r}, '--out-dir', 'runs', '--set', 'run.name=r']))")
    out = _run(code, tmp_path)
    assert out.returncode == 0, out.stderr
    run_dir = tmp_path / "runs" / "r"
    for p in [run_dir, *run_dir.rglob("*")]:
        mode = p.stat().st_mode & 0o777
        assert mode == (0o755 if p.is_dir() else 0o644), (p, oct(mode))
    assert json.loads((run_dir / "models" / "mf" / "versions.json").read_text())["hybridrec"]
    v = json.loads((run_dir / "versions.json").read_text())
    assert v["hybridrec"] and v["python"] == sys.version.split()[0] and v["packages"]["torch"]
    assert v["device"] == "cpu"


def test_progress_bars_only_on_a_terminal(monkeypatch):
    class Tty:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.delenv("HYBRIDREC_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", Tty(True))
    assert show_progress(True) and not show_progress(False)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert not show_progress(True)
    monkeypatch.delenv("TQDM_DISABLE")
    monkeypatch.setattr(sys, "stderr", Tty(False))  # a redirected log
    assert not show_progress(True)
    monkeypatch.setenv("HYBRIDREC_PROGRESS", "always")
    assert show_progress(True)


def test_console_script_and_version(tmp_path):
    out = subprocess.run([sys.executable, "-m", "hybridrec", "--version"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("hybridrec ")
    out = subprocess.run([sys.executable, "-m", "hybridrec", "frobnicate"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 2 and "invalid choice" in out.stderr
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"hybridrec": "hybridrec.cli:main"}


def test_the_light_catalog_names_what_the_registries_build():
    from hybridrec.data.loaders import DATASETS
    from hybridrec.models.registry import REGISTRY
    from hybridrec.support.catalog import DATASET_NAMES, MODEL_CLASSES

    assert DATASET_NAMES == tuple(DATASETS)
    assert MODEL_CLASSES is REGISTRY
