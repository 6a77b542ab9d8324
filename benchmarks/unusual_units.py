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
import json
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "Testing"))

from synthetic import UNUSUAL_UNIT_KINDS, fuse_with_cli, saturated_share, unusual_unit_files  # noqa: E402


def measure(kind: str) -> dict[str, float]:
    """Saturation share (0..1) of the default and of max on one kind of input pair."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        a, b, foreground = unusual_unit_files(folder, kind)
        return {
            "default": saturated_share(fuse_with_cli(a, b, None, folder)[0], foreground),
            "max": saturated_share(fuse_with_cli(a, b, "max", folder)[0], foreground),
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
