"""Saturation of the default and of max on inputs in unusual units (issue 19), through the whole `medfusion fuse`.

Usage (from the repository root; ``MEDFUSION_WEIGHTS_DIR`` picks candidate weights, as everywhere)::

    python benchmarks/unusual_units.py [--json]

The inputs are those of ``Testing/pipeline/test_unusual_ranges.py`` (``Testing/synthetic.unusual_unit_files``): a
synthetic head as MR offset to -800..200 beside PET in Bq/ml, the same MR in plain units beside that PET, and a
16-bit PNG beside an 8-bit one. Each pair is fused by the default method and by max with the command line's
defaults; the table gives the share of the foreground at >= 250 of 255 for both and whether the default stays
within max + 3 points (the test's bar).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "Testing"))

import SimpleITK as sitk  # noqa: E402
from synthetic import UNUSUAL_UNIT_KINDS, saturated_share, unusual_unit_files  # noqa: E402

from MedFusionLib.apps import cli  # noqa: E402


def _fused(a: Path, b: Path, method: str | None, folder: Path) -> np.ndarray:
    out = folder / f"fused-{method or 'default'}{''.join(a.suffixes)}"
    said = io.StringIO()  # the command's own lines (detections, the output path): shown only if it fails
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        code = cli.main(["fuse", str(a), str(b), "-o", str(out)] + (["--method", method] if method else []))
    if code != 0:
        raise SystemExit(f"medfusion fuse failed on {a.name} + {b.name} (exit {code}): {said.getvalue().strip()}")
    return sitk.GetArrayFromImage(sitk.ReadImage(str(out))).astype(np.float64)


def measure(kind: str) -> dict[str, float]:
    """Saturation share (0..1) of the default and of max on one kind of input pair."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        a, b, foreground = unusual_unit_files(folder, kind)
        return {
            "default": saturated_share(_fused(a, b, None, folder), foreground),
            "max": saturated_share(_fused(a, b, "max", folder), foreground),
        }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print the shares as JSON instead of a table")
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)
    results = {kind: measure(kind) for kind in UNUSUAL_UNIT_KINDS}
    if args.json:
        print(json.dumps(results))
        return 0
    print("| input | default saturation % | max saturation % | within max + 3 points |")
    print("|---|---|---|---|")
    for kind, r in results.items():
        within = "yes" if r["default"] <= r["max"] + 0.03 else "no"
        print(f"| {kind} | {100 * r['default']:.1f} | {100 * r['max']:.1f} | {within} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
