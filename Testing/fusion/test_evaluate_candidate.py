"""benchmarks/evaluate_candidate.py: the row a choice rule reads, from the result files of the evaluations."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import evaluate_candidate as EC  # noqa: E402


def _candidate(folder: Path, unusual_default: float) -> Path:
    """A folder laid out as ``evaluate`` leaves it, with made-up figures."""
    verdict = lambda v, rel: {"verdict": v, "relative": rel}  # noqa: E731
    volumes = {"wins": 3, "ties": 3, "losses": 2, "worst_saturation_excess": 0.002}
    volumes["verdicts"] = {"VIF": verdict("win", 0.022), "QABF": verdict("loss", -0.024)}
    (folder / "volumes").mkdir(parents=True)
    (folder / "volumes" / "volumes-select.json").write_text(json.dumps({"summary": {"fusion-unet": volumes}}))
    columns = {"EN": verdict("win", 0.3), "MI": verdict("loss", -0.2), "VIF": verdict("tie", -0.01)}
    columns["SCD"] = verdict("loss", -0.684)
    quality = {p: {"verdicts": {"fusion-unet": {**columns, "QABF": verdict("tie", 0.005)}}} for p in EC.PAIRS}
    (folder / "quality").mkdir()
    (folder / "quality" / "results-select.json").write_text(json.dumps(quality))
    unusual = {"negative mr": {"default": unusual_default, "max": 0.033}, "16-bit png": {"default": 0.04, "max": 0.037}}
    (folder / "unusual.json").write_text("a line the command printed\n" + json.dumps(unusual))
    return folder


def test_row_reads_every_figure_of_the_rules(tmp_path):
    row = EC.row(_candidate(tmp_path / "v99", 0.037))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0].endswith("/v99")  # the folder as given
    assert cells[1:] == [
        "3/3/2",
        "+0.2",
        "+2.2 / -2.4 %",
        "3/6/6",
        "-1.0 / -1.0 / -1.0 %",
        "+0.5 / +0.5 / +0.5 %",
        "-68.4 / -68.4 / -68.4 %",
        "within max + 3 points",
    ]


def test_row_flags_saturation_above_max_on_the_unusual_inputs(tmp_path):
    assert "ABOVE max + 3 points" in EC.row(_candidate(tmp_path / "v98", 0.07))


def test_evaluate_refuses_a_missing_weight_file(tmp_path):
    with pytest.raises(SystemExit, match="no weight file"):
        EC.evaluate(tmp_path / "none.pt", tmp_path / "out", "select", str(tmp_path))
    assert not (tmp_path / "out").exists()
