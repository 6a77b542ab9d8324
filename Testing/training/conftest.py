"""Fixtures of the training tests: a tiny Harvard-like tree (the options of a one-step run: synthetic.SHORT_TRAIN)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk


@pytest.fixture(scope="module")
def grey_pairs(tmp_path_factory) -> Path:
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
