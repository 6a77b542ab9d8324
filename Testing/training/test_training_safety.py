"""Training never runs code from a checkpoint and never replaces the shipped weights without ``--install``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
from synthetic import SHORT_TRAIN

from MedFusionLib.apps.cli import main
from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.training import train
from MedFusionLib.training.trainer import WEIGHTS_DIR


class _RunsCode:
    """Unpickling this object calls ``os.mkdir(marker)``: the shape of a hostile checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_hostile_checkpoint_is_refused_without_running_its_code(grey_pairs, tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"recipe": "max-residual-cnn", "payload": _RunsCode(marker)}, evil)
    with pytest.raises(MedFusionError, match="not a checkpoint written by medfusion train"):
        train(
            "max-residual-cnn", grey_pairs, out=tmp_path / "w.pt", resume=evil, quiet=True, epochs=1, steps_per_epoch=1
        )
    assert not marker.exists()


def test_hostile_checkpoint_on_the_command_line_is_one_line_exit_2(grey_pairs, tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"recipe": "max-residual-cnn", "payload": _RunsCode(marker)}, evil)
    code = main(
        [
            "train",
            "max-residual-cnn",
            "--data",
            str(grey_pairs),
            "--out",
            str(tmp_path / "w.pt"),
            "--resume",
            str(evil),
            *SHORT_TRAIN,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert err.startswith("medfusion: error: ") and len(err.strip().splitlines()) == 1


def _hashes() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(WEIGHTS_DIR.iterdir()) if p.is_file()}


def test_train_without_out_writes_under_the_current_folder_not_the_package(grey_pairs, tmp_path, monkeypatch):
    before = _hashes()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "max-residual-cnn", "--data", str(grey_pairs), *SHORT_TRAIN]) == 0
    assert _hashes() == before
    assert (tmp_path / "out" / "weights" / "max-residual-cnn.pt").is_file()
    assert (tmp_path / "out" / "weights" / "max-residual-cnn.md").is_file()


def test_out_into_the_package_needs_install(grey_pairs, tmp_path, monkeypatch, capsys):
    before = _hashes()
    monkeypatch.chdir(tmp_path)
    target = WEIGHTS_DIR / "max-residual-cnn.pt"
    assert main(["train", "max-residual-cnn", "--data", str(grey_pairs), "--out", str(target), *SHORT_TRAIN]) == 2
    assert "--install" in capsys.readouterr().err
    assert _hashes() == before


def test_unknown_recipe_override_is_one_line_exit_2(grey_pairs, tmp_path, capsys):
    code = main(
        ["train", "max-residual-cnn", "foo=1", "--data", str(grey_pairs), "--out", str(tmp_path / "w.pt"), *SHORT_TRAIN]
    )
    err = capsys.readouterr().err
    assert code == 2 and "unknown recipe override foo" in err and "internal error" not in err
    assert not (tmp_path / "w.pt").exists()
