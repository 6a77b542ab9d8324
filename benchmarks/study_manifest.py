"""Write the manifest of the study table: held-out Harvard pairs, a few per modality pair, with their group.

Usage (from the repository root)::

    python benchmarks/study_manifest.py --data ../shared/data --per-pair 6 -o out/study-heldout.csv
    medfusion study out/study-heldout.csv out/study-heldout --methods all

The pairs come from the held-out split **by case** (``MedFusionLib.training.data.split_cases``, seed 2024: the
cases no shipped network was trained or selected on), ``--per-pair`` of them per modality pair, spread evenly
over that pair's held-out slices in file order. Column ``a`` is CT/PET/SPECT (PET and SPECT are the atlas's
pseudo-colour PNGs, fused on their luma), ``b`` the MRI, ``group`` the modality pair. Paths are absolute.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MedFusionLib.training import data as D


def held_out_rows(data_dir: Path, per_pair: int) -> list[list[str]]:
    """``[a, b, name, group]`` rows: ``per_pair`` held-out pairs of each modality pair."""
    listing = D.list_pairs(data_dir)
    val = D.split_cases([(p, f) for p, f, _, _ in listing], D.SPLIT_SEED)["val"]
    rows = []
    for pair in D.PAIRS:
        held = [row for row in listing if row[0] == pair and D.case_id(row[1]) in val]
        picks = np.linspace(0, len(held) - 1, min(per_pair, len(held))).astype(int) if held else []
        for i in dict.fromkeys(int(k) for k in picks):
            _, file_id, a, b = held[i]
            rows.append([str(Path(a).resolve()), str(Path(b).resolve()), f"{pair}-{file_id}", pair])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--per-pair", type=int, default=6)
    parser.add_argument("-o", "--out", default="out/study-heldout.csv")
    args = parser.parse_args(argv)
    rows = held_out_rows(Path(args.data), args.per_pair)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "name", "group"])
        writer.writerows(rows)
    print(f"{out}: {len(rows)} held-out pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
