"""``max`` is numpy.maximum to the grey level, background included, through the whole pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MedFusionLib import fuse_images


def test_max_is_exact_outside_the_foreground_box_too():
    """Dim background (below the engine's foreground level) far from the foreground kept the inputs' mean before."""
    a = np.zeros((96, 96), np.uint8)
    b = np.zeros((96, 96), np.uint8)
    a[40:60, 40:60] = 200
    b[45:55, 30:70] = 120
    b[2:6, 2:90] = 3  # scanner noise / a faint frame, outside the box around the foreground
    a[88:92, 10:20] = 2
    result = fuse_images([sitk.GetImageFromArray(a), sitk.GetImageFromArray(b)], method="max")
    fused = sitk.GetArrayFromImage(result.fused)
    np.testing.assert_array_equal(fused.astype(int), np.maximum(a, b).astype(int))


@pytest.mark.real_data
def test_max_equals_numpy_maximum_on_every_shared_harvard_pair(shared_data):
    from MedFusionLib.training import data as D

    off = {}
    for pair, file_id, first, second in D.list_pairs(shared_data):
        result = fuse_images([sitk.ReadImage(str(first)), sitk.ReadImage(str(second))], method="max")
        expected = np.maximum(D.read_gray(first), D.read_gray(second)).astype(int)
        difference = int(np.abs(sitk.GetArrayFromImage(result.fused).astype(int) - expected).max())
        if difference:
            off[f"{pair}/{file_id}"] = difference
    assert not off
