"""``medfusion study``: the four outputs, max's metrics equal ``medfusion metrics``, the HTML checked without a
browser (and in headless Chromium when it is installed)."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from MedFusionLib.apps import cli
from MedFusionLib.metrics import METRIC_KEYS

CHROMIUM = "/usr/bin/chromium"


def _write_manifest(folder: Path, n: int = 4, groups: bool = True, bad_row: bool = False) -> Path:
    y, x = np.mgrid[-1:1:32j, -1:1:32j]
    rows = []
    for i in range(n):
        a = (110 * (x**2 + y**2 < 0.4 + 0.1 * i) + 30 * np.sin((6 + i) * x) + 40).clip(0, 255).astype(np.uint8)
        b = (200 * np.exp(-((x - 0.1 * i) ** 2 + y**2) / 0.1)).astype(np.uint8)
        sitk.WriteImage(sitk.GetImageFromArray(a), str(folder / f"a{i}.png"))
        sitk.WriteImage(sitk.GetImageFromArray(b), str(folder / f"b{i}.png"))
        rows.append([f"a{i}.png", f"b{i}.png", f"case{i}", "CT-MRI" if i % 2 else "PET-MRI"])
    if bad_row:
        rows.append(["missing.png", "b0.png", "broken", "CT-MRI"])
    path = folder / "cohort.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "name", "group"] if groups else ["a", "b", "name"])
        writer.writerows(r if groups else r[:3] for r in rows)
    return path


class _Page(HTMLParser):
    """Collects tags, image sources, external references and the text of a page; checks tags are balanced."""

    VOID = {"meta", "img", "br", "link", "input", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[tuple[str, str]] = []
        self.external: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append((attrs.get("src", ""), attrs.get("alt", "")))
        for key in ("src", "href"):
            if attrs.get(key) and not attrs[key].startswith("data:"):
                self.external.append(attrs[key])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    manifest = _write_manifest(folder)
    out = folder / "out"
    code = cli.main(["study", str(manifest), str(out), "--methods", "mean,laplacian"])
    return folder, out, code


def test_study_writes_outputs_per_method_and_case(study):
    folder, out, code = study
    assert code == 0
    for method in ("max", "mean", "laplacian"):  # the baseline (max) is run even when not listed
        assert sorted(p.name for p in (out / method).iterdir()) == [f"case{i}.png" for i in range(4)]
    rows = list(csv.DictReader(open(out / "cases.csv")))
    assert list(rows[0]) == ["method", "case", "group", *METRIC_KEYS, "seconds"]
    assert [(r["method"], r["case"]) for r in rows][:5] == [
        ("max", "case0"),
        ("max", "case1"),
        ("max", "case2"),
        ("max", "case3"),
        ("mean", "case0"),
    ]
    assert {r["group"] for r in rows} == {"CT-MRI", "PET-MRI"}


def test_max_in_cases_csv_equals_medfusion_metrics(study, capsys):
    folder, out, _ = study
    rows = [r for r in csv.DictReader(open(out / "cases.csv")) if r["method"] == "max"]
    for row in rows[:2]:
        i = row["case"][-1]
        capsys.readouterr()
        assert (
            cli.main(
                [
                    "metrics",
                    str(folder / f"a{i}.png"),
                    str(folder / f"b{i}.png"),
                    str(out / "max" / f"case{i}.png"),
                    "--json",
                ]
            )
            == 0
        )
        reference = json.loads(capsys.readouterr().out)
        for key in METRIC_KEYS:
            assert float(row[key]) == pytest.approx(reference[key], rel=1e-9, abs=1e-12), key


def test_summary_has_intervals_wins_and_groups(study):
    _, out, _ = study
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [(r["method"], r["group"]) for r in rows] == [
        (m, g) for g in ("all", "CT-MRI", "PET-MRI") for m in ("max", "mean", "laplacian")
    ]
    for row in rows:
        for key in METRIC_KEYS:
            if row["n"] != "1":
                assert float(row[f"{key}_ci_low"]) <= float(row[f"{key}_mean"]) <= float(row[f"{key}_ci_high"])
    mean_all = rows[1]
    assert int(mean_all["wins"]) + int(mean_all["ties"]) + int(mean_all["losses"]) == len(METRIC_KEYS)
    # mean fusion halves the edges that max keeps and has a lower SD on every case: clear losses
    assert mean_all["QABF_vs_baseline"] == "loss" and mean_all["SD_vs_baseline"] == "loss"
    assert rows[0]["QABF_vs_baseline"] == "baseline"
    cases = [r for r in csv.DictReader(open(out / "cases.csv")) if r["method"] == "mean"]
    assert float(mean_all["EN_mean"]) == pytest.approx(np.mean([float(r["EN"]) for r in cases]))


def test_report_is_self_contained_and_complete(study):
    _, out, _ = study
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    page.close()
    assert not page.errors and not page.stack
    assert not page.external and "script" not in page.tags
    alts = [alt for _, alt in page.images]
    assert alts == [f"box plot of {k}" for k in METRIC_KEYS] + ["montage of cases across methods"]
    for src, alt in page.images:
        assert src.startswith("data:image/png;base64,"), alt
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.width > 100 and image.height > 100
    text = " ".join(page.text)
    for needed in (
        "At a glance",
        "wins / ties / losses",
        "group CT-MRI",
        "Protocol",
        "t-interval",
        "Versions",
        "laplacian",
    ):
        assert needed in text, needed
    assert page.tags.count("b") >= 3 * len(METRIC_KEYS)  # the best mean of each column, per table (all, 2 groups)
    montage = Image.open(io.BytesIO(base64.b64decode(page.images[-1][0].split(",", 1)[1])))
    assert montage.width >= 5 * 160  # two sources + three methods per row
    assert montage.height == 4 * (160 + 18)  # the four cases, each once


def test_study_reports_a_failed_row_and_goes_on(tmp_path, capsys):
    manifest = _write_manifest(tmp_path, n=2, groups=False, bad_row=True)
    code = cli.main(["study", str(manifest), str(tmp_path / "out"), "--methods", "max"])
    assert code == 1
    rows = list(csv.DictReader(open(tmp_path / "out" / "cases.csv")))
    assert [r["case"] for r in rows] == ["case0", "case1"]
    assert {r["group"] for r in csv.DictReader(open(tmp_path / "out" / "summary.csv"))} == {"all"}
    page = _Page()
    page.feed((tmp_path / "out" / "report.html").read_text(encoding="utf-8"))
    assert "Failed runs" in " ".join(page.text)
    montage = Image.open(io.BytesIO(base64.b64decode(page.images[-1][0].split(",", 1)[1])))
    assert montage.height == 2 * (160 + 18)  # the two good cases, none repeated


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--methods", "max,nope"], "unknown fusion method 'nope'"),
        (["--baseline", "nope"], "unknown fusion method 'nope'"),
        (["--workers", "0"], "at least 1"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "exclude each other"),
        (["--scheduler", "tcp://127.0.0.1:9"], "cannot reach scheduler"),
    ],
)
def test_study_user_errors_are_one_line(tmp_path, capsys, extra, message):
    manifest = _write_manifest(tmp_path, n=1)
    assert cli.main(["study", str(manifest), str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_study_on_the_dask_engine_gives_the_local_results(study, tmp_path):
    """``--workers 2``: every (method, case) runs as a task on an embedded LocalCluster of 2 processes; the
    outputs and the metrics equal the in-process run's."""
    folder, local_out, _ = study
    out = tmp_path / "dask"
    assert (
        cli.main(["study", str(folder / "cohort.csv"), str(out), "--methods", "mean,laplacian", "--workers", "2"]) == 0
    )

    def rows(path):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(open(path / "cases.csv"))]

    assert rows(out) == rows(local_out)
    for method in ("max", "mean", "laplacian"):
        for i in range(4):
            assert (out / method / f"case{i}.png").read_bytes() == (local_out / method / f"case{i}.png").read_bytes()


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_report_renders_in_headless_chromium(study, tmp_path):
    _, out, _ = study
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    subprocess.run(
        [
            shutil.which(CHROMIUM) or CHROMIUM,
            *flags,
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            (out / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (2400, 1200)
    assert image.std() > 20  # tables and plots drawn, not a blank page


def test_study_of_volumes_in_volume_mode(tmp_path):
    from MedFusionLib.samples.phantom import make_phantom_pair

    pair = make_phantom_pair()
    shrink = lambda image: sitk.Shrink(image, [2, 2, 2])  # noqa: E731  (small and fast)
    for i in range(2):
        sitk.WriteImage(shrink(pair.ct), str(tmp_path / f"ct{i}.nrrd"))
        sitk.WriteImage(shrink(pair.mr), str(tmp_path / f"mr{i}.nrrd"))
    (tmp_path / "m.csv").write_text("a,b,name\nct0.nrrd,mr0.nrrd,v0\nct1.nrrd,mr1.nrrd,v1\n")
    out = tmp_path / "out"
    assert cli.main(["study", str(tmp_path / "m.csv"), str(out), "--methods", "mean", "--mode", "volume"]) == 0
    fused = sitk.ReadImage(str(out / "mean" / "v0.nrrd"))
    assert fused.GetSize() == shrink(pair.ct).GetSize()
    rows = list(csv.DictReader(open(out / "cases.csv")))
    assert [(r["method"], r["case"]) for r in rows] == [("max", "v0"), ("max", "v1"), ("mean", "v0"), ("mean", "v1")]
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert page.images[-1][1] == "montage of cases across methods" and "mode volume" in " ".join(page.text)
