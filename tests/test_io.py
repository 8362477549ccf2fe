"""The one atomic writer: whole files or the old ones, readable modes, CSV of uneven rows."""

import os
import stat

import pytest
import torch

from hybridrec.io import atomic_folder, save_tensors, write_csv, write_json, write_text


def test_write_replaces_and_leaves_no_temporary_file(tmp_path):
    path = write_text(tmp_path / "sub" / "a.txt", "one")
    write_text(path, "two")
    assert path.read_text() == "two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    write_json(tmp_path / "m.json", {"recall@20": 0.1})
    with pytest.raises(TypeError):
        write_json(tmp_path / "m.json", {"bad": object()})
    assert (tmp_path / "m.json").read_text() == '{\n  "recall@20": 0.1\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_files_and_folders_get_the_modes_of_a_plain_write(tmp_path):
    old = os.umask(0o022)
    try:
        f = write_text(tmp_path / "a.txt", "x")
        d = atomic_folder(tmp_path / "model", lambda tmp: save_tensors(tmp / "w.safetensors", {"w": torch.ones(2)}))
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert stat.S_IMODE(d.stat().st_mode) == 0o755
    assert stat.S_IMODE((d / "w.safetensors").stat().st_mode) == 0o644


def test_csv_header_is_the_union_of_the_rows_keys(tmp_path):
    write_csv(tmp_path / "r.csv", [{"model": "mf", "recall@20": 0.5}, {"model": "llm", "cost": 3}])
    assert (tmp_path / "r.csv").read_text().splitlines() == ["model,recall@20,cost", "mf,0.5,", "llm,,3"]
    write_csv(tmp_path / "empty.csv", [])
    assert (tmp_path / "empty.csv").read_text() == ""


def test_folder_swap_replaces_the_old_folder_and_a_failure_keeps_it(tmp_path):
    path = tmp_path / "model"
    atomic_folder(path, lambda tmp: write_text(tmp / "v1.txt", "1"))
    atomic_folder(path, lambda tmp: write_text(tmp / "v2.txt", "2"))
    assert [p.name for p in path.iterdir()] == ["v2.txt"]

    def broken(tmp):
        write_text(tmp / "half.txt", "?")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_folder(path, broken)
    assert [p.name for p in path.iterdir()] == ["v2.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    once = atomic_folder(path, lambda tmp: write_text(tmp / "v3.txt", "3"), replace=False)
    assert [p.name for p in once.iterdir()] == ["v2.txt"]  # built once: an existing folder is kept
