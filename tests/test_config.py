import pytest

from hybridrec.config import Config, ConfigError, load_config, parse_override


def test_defaults_and_round_trip():
    cfg = Config()
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_override_parsing():
    assert parse_override("train.lr=0.01") == (["train", "lr"], 0.01)
    assert parse_override("eval.ks=[5, 10]") == (["eval", "ks"], [5, 10])
    assert parse_override("data.path=") == (["data", "path"], None)
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("train.lr")


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  dataset: ml-100k\ntrain:\n  epochs: 3\n  lr: 0.1\n")
    cfg = load_config([p], ["train.epochs=7", "model.params.dim=16"])
    assert cfg.data.dataset == "ml-100k"
    assert cfg.train.epochs == 7 and cfg.train.lr == 0.1
    assert cfg.model.params == {"dim": 16}


def test_unknown_keys_and_bad_types_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown key.*'epoch'.*valid keys"):
        load_config([], ["train.epoch=3"])
    with pytest.raises(ConfigError, match="train.epochs must be an integer"):
        load_config([], ["train.epochs=three"])
    with pytest.raises(ConfigError, match="not found"):
        load_config([tmp_path / "missing.yaml"])


def test_a_modes_split_options_never_leak_into_another_split(tmp_path):
    """The mode's options hold for its own split: a config naming another split (or its
    own options mapping) replaces them; one option set on the command line adds to them."""
    from hybridrec.experiments.modes import MODES

    base = MODES["hybrid"].base
    assert load_config(base=base).data.split_options == {"valid_fraction": 0.1, "valid_cold_fraction": 0.1}
    own = tmp_path / "ml.yaml"
    own.write_text("data: {split: leave_last_out, split_options: {n_test: 5, n_valid: 5}}\n")
    assert load_config([own], base=base).data.split_options == {"n_test": 5, "n_valid": 5}
    assert load_config(overrides=["data.split=temporal"], base=base).data.split_options == {}
    assert load_config(overrides=["data.split_options={cold_fraction: 0.3}"], base=base).data.split_options == {
        "cold_fraction": 0.3}
    assert load_config(overrides=["data.split_options.cold_fraction=0.3"], base=base).data.split_options == {
        "valid_fraction": 0.1, "valid_cold_fraction": 0.1, "cold_fraction": 0.3}
