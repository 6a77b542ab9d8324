"""One candidate `fusion-unet` weight file through every figure a choice rule reads, and the candidates' table.

Usage (from the repository root)::

    # a candidate trained by `medfusion train fusion-unet-vN --train-split fit --out out/r5/vN/fusion-unet-vN.pt`
    python benchmarks/evaluate_candidate.py out/r5/vN/fusion-unet-vN.pt --out out/r5/vN [--split select]
    # once, for the chosen candidate only: the report volumes and the 2-D val cases
    python benchmarks/evaluate_candidate.py out/r5/vN/fusion-unet-vN.pt --out out/r5/vN-held-out --split held-out
    # the table of candidates already evaluated (one row each)
    python benchmarks/evaluate_candidate.py --table out/r5/v14 out/r5/v15

What it runs, each with ``MEDFUSION_WEIGHTS_DIR`` at a copy of the weights under ``OUT/w`` (the package's weights are
never touched) and one torch thread: ``medfusion export fusion-unet`` (the ONNX graph every method runs on),
``evaluate_volumes.py`` and ``evaluate_quality.py`` against max (``select``: both select splits; ``held-out``: the
report volumes and the 2-D ``val`` cases), and ``unusual_units.py``. Outputs and
logs stay under ``OUT``. The row gives what the rules of docs/deep-fusion.md ("The choice") ask for: the real-volume
W/T/L, worst saturation above max and the sources, VIF and QABF against max, the 2-D cells and per-pair VIF,
QABF and SCD against max (an SCD far below max's is the figure of a dropped source), and whether the unusual-unit
inputs stay within max + 3 points.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ("CT-MRI", "PET-MRI", "SPECT-MRI")
SPLITS = {"select": ("select", "select"), "held-out": ("report", "val")}  # (volumes, 2-D)
HEADER = (
    "| candidate | volumes W/T/L | worst saturation (points) | VIF / QABF vs max | 2-D cells W/T/L "
    "| 2-D VIF vs max (CT / PET / SPECT) | 2-D QABF vs max | 2-D SCD vs max | unusual units |"
    "\n|---|---|---|---|---|---|---|---|---|"
)


def _run(command: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        code = subprocess.call(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed (exit {code}); see {log}")


def evaluate(weights: Path, out: Path, split: str, data: str) -> None:
    """Export the candidate's graph and write every figure of its row under ``out``."""
    if not weights.is_file():
        raise SystemExit(f"no weight file at {weights}")
    local = out / "w"
    local.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, local / "fusion-unet.pt")
    env = {**os.environ, "MEDFUSION_WEIGHTS_DIR": str(local.resolve()), "MEDFUSION_THREADS": "1"}
    py, bench = sys.executable, ROOT / "benchmarks"
    _run([py, "-c", "from MedFusionLib.apps.cli import main; main()", "export", "fusion-unet"], env, out / "export.log")
    volumes, slices = SPLITS[split]
    common = ["--data", data, "--methods", "max,fusion-unet"]
    _run(
        [py, str(bench / "evaluate_volumes.py"), *common, "--split", volumes, "--out", str(out / "volumes")],
        env,
        out / "volumes.log",
    )
    _run(
        [py, str(bench / "evaluate_quality.py"), *common, "--split", slices, "--out", str(out / "quality")],
        env,
        out / "quality.log",
    )
    _run([py, str(bench / "unusual_units.py"), "--json"], env, out / "unusual.json")


def row(folder: Path) -> str:
    """The table row of an evaluated candidate folder (the split is read from its result file names)."""
    volumes = json.loads(next((folder / "volumes").glob("volumes-*.json")).read_text())["summary"]["fusion-unet"]
    quality = json.loads(next((folder / "quality").glob("results-*.json")).read_text())
    cells = {"win": 0, "tie": 0, "loss": 0}
    for pair in PAIRS:
        for verdict in quality[pair]["verdicts"]["fusion-unet"].values():
            cells[verdict["verdict"]] += 1
    # per pair, relative to max; an SCD far below max's: one source dropped (round 9's SPECT)
    per_pair = {
        key: " / ".join(f"{100 * quality[p]['verdicts']['fusion-unet'][key]['relative']:+.1f}" for p in PAIRS)
        for key in ("VIF", "QABF", "SCD")
    }
    unusual = json.loads((folder / "unusual.json").read_text().strip().splitlines()[-1])
    within = all(r["default"] <= r["max"] + 0.03 for r in unusual.values())
    v = volumes["verdicts"]
    return (
        f"| {folder.as_posix()} | {volumes['wins']}/{volumes['ties']}/{volumes['losses']} "
        f"| {100 * volumes['worst_saturation_excess']:+.1f} "
        f"| {100 * v['VIF']['relative']:+.1f} / {100 * v['QABF']['relative']:+.1f} % "
        f"| {cells['win']}/{cells['tie']}/{cells['loss']} | {per_pair['VIF']} % | {per_pair['QABF']} % "
        f"| {per_pair['SCD']} % | {'within' if within else 'ABOVE'} max + 3 points |"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights", nargs="?", type=Path, help="the candidate's fusion-unet weight file (.pt)")
    p.add_argument("--out", type=Path, help="folder for its figures (not committed)")
    p.add_argument("--split", choices=sorted(SPLITS), default="select", help="select (choosing; default) or held-out")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--table", nargs="+", type=Path, metavar="FOLDER", help="print the rows of evaluated folders")
    args = p.parse_args(argv)
    if args.table:
        print(HEADER)
        for folder in args.table:
            print(row(folder))
        return 0
    if args.weights is None or args.out is None:
        p.error("give a weight file and --out, or --table FOLDER ...")
    evaluate(args.weights, args.out, args.split, args.data)
    print(HEADER)
    print(row(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
