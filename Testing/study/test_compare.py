"""``medfusion compare``: all applicable methods on one case, montage and metrics CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk

from MedFusionLib.apps import cli
from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.fusion import available_methods
from MedFusionLib.metrics import METRIC_KEYS
from MedFusionLib.samples.phantom import make_phantom_pair
from MedFusionLib.study.compare import applicable_methods

CLASSICAL = "mean,max,laplacian,guided-filter"


def test_applicable_methods_follow_inputs_and_modes():
    names = applicable_methods(3, "volume")
    expected = [m.name for m in available_methods() if m.accepts(3) and "volume" in m.modes]
    assert names == expected and "max" in names
    with pytest.raises(MedFusionError, match="unknown fusion method"):
        applicable_methods(2, "slice", ["max", "nope"])


def test_compare_volumes_writes_montage_csv_and_each_result(tmp_path, capsys):
    pair = make_phantom_pair()
    a, b = tmp_path / "ct.nrrd", tmp_path / "mr.nrrd"
    sitk.WriteImage(pair.ct, str(a))
    sitk.WriteImage(pair.mr, str(b))
    out = tmp_path / "cmp"
    code = cli.main(["compare", str(a), str(b), "-o", str(out), "--mode", "volume", "--methods", CLASSICAL])
    assert code == 0
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert sorted(r["method"] for r in rows) == sorted(CLASSICAL.split(","))  # registry order
    assert set(METRIC_KEYS) <= set(rows[0])
    for name in CLASSICAL.split(","):
        assert sitk.ReadImage(str(out / f"{name}.nrrd")).GetSize() == pair.ct.GetSize()
    montage = sitk.ReadImage(str(out / "montage.png"))
    assert montage.GetHeight() > 6 * 100  # 2 sources + 4 methods, one row each
    # the plane columns are titled (axial, coronal, sagittal) above the first row: text in the top band over
    # the second and third tiles, where a row label (a short file name at the left) never reaches
    canvas = sitk.GetArrayFromImage(montage)
    tile = montage.GetWidth() // 3
    assert canvas[:14, tile + 4 : tile + 40].max() > 100 and canvas[:14, 2 * tile + 8 : 2 * tile + 40].max() > 100
    assert "montage" in capsys.readouterr().out


def test_compare_slices(tmp_path, capsys):
    y, x = np.mgrid[-1:1:64j, -1:1:64j]
    a = (120 * (x**2 + y**2 < 0.7) + 40 * np.sin(10 * x)).clip(0, 255).astype(np.uint8)
    b = (200 * np.exp(-(x**2 + y**2) / 0.1)).astype(np.uint8)
    pa, pb = tmp_path / "a.png", tmp_path / "b.png"
    sitk.WriteImage(sitk.GetImageFromArray(a), str(pa))
    sitk.WriteImage(sitk.GetImageFromArray(b), str(pb))
    code = cli.main(["compare", str(pa), str(pb), "-o", str(tmp_path / "cmp"), "--methods", "max,mean"])
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "cmp" / "metrics.csv")))
    assert float(rows[0]["QABF"]) > float(rows[1]["QABF"])  # max keeps edges that mean halves
