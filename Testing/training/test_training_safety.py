"""Training never runs code from a checkpoint and never replaces the shipped weights without ``--install``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedFusionLib.apps.cli import main
from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.training import train
from MedFusionLib.training.trainer import WEIGHTS_DIR

SHORT = ["--epochs", "1", "--steps-per-epoch", "1", "--batch", "2", "--threads", "1", "--validate-every", "9"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A Harvard-like tree of grey CT-MRI slices (3 cases x 2 slices): enough for a one-step 2-D run."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1)
    for modality in ("CT", "MRI"):
        (root / "harvard" / "CT-MRI" / modality).mkdir(parents=True)
    for case in ("2", "16", "20"):
        for s in range(2):
            for modality in ("CT", "MRI"):
                img = (rng.random((40, 40)) * 255).astype(np.uint8)
                sitk.WriteImage(
                    sitk.GetImageFromArray(img), str(root / "harvard" / "CT-MRI" / modality / f"{case}{s:03d}.png")
                )
    return root


class _RunsCode:
    """Unpickling this object calls ``os.mkdir(marker)``: the shape of a hostile checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_hostile_checkpoint_is_refused_without_running_its_code(data_dir, tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"recipe": "max-residual-cnn", "payload": _RunsCode(marker)}, evil)
    with pytest.raises(MedFusionError, match="not a checkpoint written by medfusion train"):
        train("max-residual-cnn", data_dir, out=tmp_path / "w.pt", resume=evil, quiet=True, epochs=1, steps_per_epoch=1)
    assert not marker.exists()


def test_hostile_checkpoint_on_the_command_line_is_one_line_exit_2(data_dir, tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"recipe": "max-residual-cnn", "payload": _RunsCode(marker)}, evil)
    code = main(
        [
            "train",
            "max-residual-cnn",
            "--data",
            str(data_dir),
            "--out",
            str(tmp_path / "w.pt"),
            "--resume",
            str(evil),
            *SHORT,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert err.startswith("medfusion: error: ") and len(err.strip().splitlines()) == 1


def _hashes() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(WEIGHTS_DIR.iterdir()) if p.is_file()}


def test_train_without_out_writes_under_the_current_folder_not_the_package(data_dir, tmp_path, monkeypatch):
    before = _hashes()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "max-residual-cnn", "--data", str(data_dir), *SHORT]) == 0
    assert _hashes() == before
    assert (tmp_path / "out" / "weights" / "max-residual-cnn.pt").is_file()
    assert (tmp_path / "out" / "weights" / "max-residual-cnn.md").is_file()


def test_out_into_the_package_needs_install(data_dir, tmp_path, monkeypatch, capsys):
    before = _hashes()
    monkeypatch.chdir(tmp_path)
    target = WEIGHTS_DIR / "max-residual-cnn.pt"
    assert main(["train", "max-residual-cnn", "--data", str(data_dir), "--out", str(target), *SHORT]) == 2
    assert "--install" in capsys.readouterr().err
    assert _hashes() == before


def test_unknown_recipe_override_is_one_line_exit_2(data_dir, tmp_path, capsys):
    code = main(
        ["train", "max-residual-cnn", "foo=1", "--data", str(data_dir), "--out", str(tmp_path / "w.pt"), *SHORT]
    )
    err = capsys.readouterr().err
    assert code == 2 and "unknown recipe override foo" in err and "internal error" not in err
    assert not (tmp_path / "w.pt").exists()
