"""Fusion quality on the Harvard cases, compared with pixel-wise max **paired per image**.

Usage (from the repository root)::

    # choosing anything (recipes, default, strategies): the model-selection cases only
    python benchmarks/evaluate_quality.py --data ../shared/data --split select [--methods max,fusion-unet]
    # the report, once, at the end: the held-out cases
    python benchmarks/evaluate_quality.py --data ../shared/data --split val --out out/quality

Protocol (docs/evaluation.md, "Protocol 1"):

* cases are split **by case** (``MedFusionLib.training.data.split_cases``, seed 2024): ``select`` (model-selection
  cases, part of the training cases, never trained on by ``--train-split fit`` weights) and ``val`` (held out:
  never used for training or for any choice);
* every pair of the split is fused in slice mode (PET/SPECT as their rounded luma, as in the published protocol;
  the pair's modalities, known from its folder, are passed to the methods that use them),
  the fused image rounded to 8 bits and scored with ``MedFusionLib.metrics.compute_metrics`` (our definitions,
  ``../shared/docs/metrics-spec.md``) on the 8 published columns EN SD SF MI SCD VIF QABF SSIM;
* each method is compared with pixel-wise max **per image**: for each column the paired differences
  ``d_i = m(F_i) - m(max_i)`` give a mean and a 95 % confidence interval (Student t with n - 1 degrees of
  freedom over the images). A **win** needs ``mean(d) >= 1 %`` of max's mean value **and** the interval above
  zero; a **loss** is the mirror image (mean <= -1 % and the interval below zero); anything else is a **tie**,
  and ties are not wins. (All 8 columns are higher-is-better; a column where lower is better would be mirrored,
  see ``LOWER_IS_BETTER``.) Slices of one case are not independent, so the interval is optimistic about how
  the result carries over to new cases: read it together with the number of cases printed per pair;
* mean |F - max| (grey levels) per method: how far a method's output is from max fusion;
* context, not pass/fail: CDDFuse's published row, our re-run of the released IFCNN and pixel max on the
  published test pairs (``../shared/docs/targets.md``; other pairs, MI in nats, their SSIM variant differs);
* a montage per modality pair: six cases of the split (evenly spaced), columns: source A, source B, max, the
  default method (and ``--montage-methods``), written under ``--out`` (not committed).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MedFusionLib.fusion import available_methods, fuse_arrays  # noqa: E402
from MedFusionLib.metrics import compute_metrics  # noqa: E402
from MedFusionLib.metrics.published_protocol import ssim_published  # noqa: E402
from MedFusionLib.training import data as D  # noqa: E402

COLUMNS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "QABF", "SSIM")
LOWER_IS_BETTER: frozenset = frozenset()  # none of the 8 published columns; mirrored in paired_verdict if added
MARGIN = 0.01  # a win needs the mean paired difference to be at least 1 % of max's mean value
LN2 = math.log(2)
MONTAGE_CASES = 6

# Context rows (targets.md): EN SD SF MI(nats) SCD VIF QABF SSIM(their variant); None = not published.
# IFCNN: the published CT-MRI row and targets.md's re-run of the released IFCNN-MAX (PET-MRI, SPECT-MRI);
# GeSeNet: targets.md's re-run with the authors' weights (no SSIM).
PUBLISHED = {
    "CT-MRI": {
        "CDDFuse (pub.)": (4.88, 79.17, 38.14, 2.61, 1.41, 0.61, 0.68, 1.34),
        "IFCNN (pub.)": (4.53, 72.92, 34.89, 2.20, 1.31, 0.48, 0.62, 1.33),
        "GeSeNet (re-run)": (5.16, 79.40, 36.60, 2.33, 1.41, 0.55, 0.68, None),
        "max (pub. pairs)": (4.47, 84.22, 33.47, 3.63, 1.50, 0.64, 0.63, None),
    },
    "PET-MRI": {
        "CDDFuse (pub.)": (4.23, 70.73, 29.57, 2.03, 1.69, 0.71, 0.71, 1.49),
        "IFCNN (pub.)": (3.95, 65.56, 29.14, 1.74, 1.57, 0.55, 0.64, None),
        "GeSeNet (re-run)": (4.65, 72.85, 27.87, 1.98, 1.64, 0.69, 0.71, None),
        "max (pub. pairs)": (3.85, 75.49, 27.28, 3.04, 1.71, 0.92, 0.71, None),
    },
    "SPECT-MRI": {
        "CDDFuse (pub.)": (3.90, 58.31, 20.87, 2.49, 1.35, 0.97, 0.78, 1.48),
        "IFCNN (pub.)": (3.70, 53.29, 20.45, 1.75, 1.05, 0.60, 0.69, None),
        "GeSeNet (re-run)": (4.19, 59.70, 20.31, 1.96, 1.49, 0.70, 0.74, None),
        "max (pub. pairs)": (3.54, 59.47, 18.36, 2.88, 1.33, 0.74, 0.69, None),
    },
}


def save_results(results: dict, path: Path, t0: float) -> None:
    """Write the run's results as JSON beside its montages, and say where and after how long."""
    print(f"\n({time.perf_counter() - t0:.0f} s; montages and {path.name} in {path.parent})")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))


def at_least_published(row: dict, published: tuple) -> tuple:
    """Columns where ``row`` (our metrics, with ``SSIM_dr2``) is at least a published row, and how many are published.

    Compared as published: MI in nats, SSIM with the published protocol's variant.
    """
    ours = [row[c] * LN2 if c == "MI" else row["SSIM_dr2"] if c == "SSIM" else row[c] for c in COLUMNS]
    compared = [(c, o, p) for c, o, p in zip(COLUMNS, ours, published) if p is not None]
    return [c for c, o, p in compared if o >= p], len(compared)


def paired_verdict(method_values, max_values, lower_is_better: bool = False, margin: float = MARGIN) -> dict:
    """Paired comparison of one column against max over the same images: win / tie / loss.

    ``d_i = method_i - max_i`` (sign flipped when lower is better); 95 % Student-t interval of the mean of ``d``.
    Win: ``mean(d) >= margin * |mean(max)|`` and the interval's lower end > 0; loss: the mirror; else tie.
    """
    from scipy import stats

    a = np.asarray(method_values, np.float64)
    b = np.asarray(max_values, np.float64)
    if a.shape != b.shape or a.size < 2:
        raise ValueError("paired_verdict needs two equally long series of at least 2 values")
    d = (b - a) if lower_is_better else (a - b)
    mean = float(d.mean())
    half = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    need = margin * abs(float(b.mean()))
    if mean >= need and mean - half > 0:
        verdict = "win"
    elif mean <= -need and mean + half < 0:
        verdict = "loss"
    else:
        verdict = "tie"
    return {
        "verdict": verdict,
        "mean_diff": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "relative": mean / abs(float(b.mean())) if b.mean() else float("nan"),
    }


def _fmt(v, width=7, digits=2):
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.{digits}f}"


def evaluate(
    data_dir: Path, methods, limit: int = 0, out_dir: Path | None = None, split: str = "select", montage_methods=()
):
    """Fuse and score every pair of ``split``; per pair: mean rows, paired verdicts against max, |F - max|."""
    methods = ["max"] + [m for m in methods if m != "max"]  # max first: every other method is compared with it
    cases_set = D.load_pairs(data_dir, split)
    results = {}
    for pair in D.PAIRS:
        sub = cases_set.subset(pair)
        if not sub.ids:
            continue
        idx = np.arange(len(sub.ids))
        if limit and len(idx) > limit:
            idx = idx[np.linspace(0, len(idx) - 1, limit).astype(int)]
        montage_idx = set(idx[np.linspace(0, len(idx) - 1, min(MONTAGE_CASES, len(idx))).astype(int)].tolist())
        cases = sorted({D.case_id(sub.ids[i]) for i in idx}, key=int)
        per_image, rows, montage, diff_to_max = {}, {}, {}, {}
        maxes = {}
        for name in methods:
            t0 = time.perf_counter()
            scores, diffs = [], []
            for i in idx:
                a, b = sub.images[i, 0], sub.images[i, 1]
                fused = fuse_arrays([a / 255.0, b / 255.0], name, modalities=D.PAIR_MODALITIES[pair])
                fused8 = np.clip(np.floor(fused * 255.0 + 0.5), 0, 255)
                if name == "max":
                    maxes[i] = fused8
                diffs.append(float(np.abs(fused8 - maxes[i]).mean()))
                sources = [a.astype(np.float64), b.astype(np.float64)]
                row = compute_metrics(sources, fused8, keys=list(COLUMNS))
                row["SSIM_dr2"] = ssim_published(sources, fused8)
                scores.append(row)
                if i in montage_idx:
                    montage.setdefault(int(i), {"A": a, "B": b, "id": sub.ids[i]})[name] = fused8.astype(np.uint8)
            per_image[name] = {c: [s[c] for s in scores] for c in COLUMNS + ("SSIM_dr2",)}
            rows[name] = {c: float(np.mean(v)) for c, v in per_image[name].items()}
            rows[name]["seconds"] = time.perf_counter() - t0
            diff_to_max[name] = float(np.mean(diffs))
        verdicts = {
            name: {c: paired_verdict(per_image[name][c], per_image["max"][c], c in LOWER_IS_BETTER) for c in COLUMNS}
            for name in methods
            if name != "max"
        }
        results[pair] = {
            "n": len(idx),
            "cases": cases,
            "rows": rows,
            "verdicts": verdicts,
            "mean_abs_diff_to_max": diff_to_max,
            "split_name": "held-out" if split == "val" else "model-selection",
        }
        if out_dir is not None:
            shown = ["max"] + [m for m in montage_methods if m != "max" and m in methods]
            _write_montage(out_dir / f"montage-{split}-{pair}.png", [montage[k] for k in sorted(montage)], shown)
    return results


def _write_montage(path: Path, tiles, methods):
    """Rows: cases; columns: source A, source B, then ``methods`` (8-bit grey)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = tiles[0]["A"].shape
    grid = np.zeros((len(tiles) * h, (len(methods) + 2) * w), np.uint8)
    for r, tile in enumerate(tiles):
        for c, key in enumerate(["A", "B"] + list(methods)):
            grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile[key]
    Image.fromarray(grid).save(path, optimize=True)


def reach_table(results: dict) -> str:
    """Per method and context row: columns where the method's mean is at least the row's, summed over the pairs.

    Context, not a paired test: the rows come from other test pairs (targets.md). Seven columns (SSIM left out:
    its published variant is not the same code), MI compared in nats: 21 cells over the three pairs.
    """
    rows: dict = {}
    for pair, res in results.items():
        for name, row in res["rows"].items():
            for ref, published in PUBLISHED.get(pair, {}).items():
                if ref.startswith("max"):
                    continue
                reached, compared = at_least_published(row, published[:-1] + (None,))  # 7 columns: no SSIM
                cell = rows.setdefault(name, {}).setdefault(ref, {"reached": 0, "compared": 0, "per_pair": []})
                cell["reached"] += len(reached)
                cell["compared"] += compared
                cell["per_pair"].append(f"{pair} {len(reached)}/{compared}")
    lines = ["\n## Columns at least a published row (context: other test pairs; per pair, then all pairs)"]
    for name, refs in rows.items():
        for ref, cell in refs.items():
            lines.append(
                f"{name:<26} {ref:<18} {', '.join(cell['per_pair'])}; all {cell['reached']}/{cell['compared']}"
            )
    return "\n".join(lines)


def score_counts(verdicts: dict) -> tuple:
    """(wins, ties, losses) over the columns of one method's verdicts."""
    v = [x["verdict"] for x in verdicts.values()]
    return v.count("win"), v.count("tie"), v.count("loss")


def print_table(results, methods, default: str):
    head = f"{'method':<26}" + "".join(
        f"{c:>8}" for c in ("EN", "SD", "SF", "MI bit", "MI nat", "SCD", "VIF", "QABF", "SSIM", "SSIMdr2", "|F-max|")
    )
    lines = []
    total = {}
    for pair, res in results.items():
        lines.append(f"\n## {pair}: {res['n']} {res.get('split_name')} pairs, cases {', '.join(res['cases'])}")
        lines.append(head)
        for name in res["rows"]:
            r = res["rows"][name]
            vals = [
                r["EN"],
                r["SD"],
                r["SF"],
                r["MI"],
                r["MI"] * LN2,
                r["SCD"],
                r["VIF"],
                r["QABF"],
                r["SSIM"],
                r["SSIM_dr2"],
                res["mean_abs_diff_to_max"][name],
            ]
            lines.append(f"{name + (' (default)' if name == default else ''):<26}" + "".join(_fmt(v, 8) for v in vals))
        for name, pub in PUBLISHED.get(pair, {}).items():
            en, sd, sf, mi, scd, vif, qabf, ssim_pub = pub
            lines.append(
                f"{name:<26}"
                + "".join(_fmt(v, 8) for v in (en, sd, sf, None, mi, scd, vif, qabf, None, ssim_pub, None))
            )
        lines.append(
            "(context rows: published test pairs, not these cases; MI in nats; CDDFuse's SSIM with data range 2)"
        )
        lines.append(
            f"paired against max per image (win: mean diff >= {MARGIN:.0%} of max and 95 % t-interval above 0; "
            "W/T/L; +rel. diff of the mean):"
        )
        lines.append(f"{'method':<26}" + "".join(f"{c:>9}" for c in COLUMNS) + "    W/T/L")
        for name, verdicts in res["verdicts"].items():
            cells = "".join(
                f"{verdicts[c]['verdict'][0].upper()}{verdicts[c]['relative']:+7.1%}"[:9].rjust(9) for c in COLUMNS
            )
            w, t, l = score_counts(verdicts)
            total.setdefault(name, [0, 0, 0])
            total[name] = [total[name][0] + w, total[name][1] + t, total[name][2] + l]
            lines.append(f"{name:<26}{cells}    {w}/{t}/{l}")
    lines.append(reach_table(results))
    lines.append("\n## All pairs: (pair, column) cells won / tied / lost against max")
    for name, (w, t, l) in total.items():
        lines.append(f"{name + (' (default)' if name == default else ''):<26} {w}/{t}/{l}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", default=str(ROOT / "out" / "quality"), help="montages and results JSON (not committed)")
    p.add_argument(
        "--methods", default=None, help="comma-separated (default: every registered method); max is always added"
    )
    p.add_argument(
        "--split",
        choices=("select", "val"),
        default="select",
        help="select: the model-selection cases (every choice is made here; the default); val: the held-out "
        "cases, for the final report only",
    )
    p.add_argument(
        "--montage-methods",
        default=None,
        help="columns of the montage after the sources and max (default: the default method)",
    )
    p.add_argument("--limit", type=int, default=0, help="at most N pairs per modality pair (evenly spaced; 0 = all)")
    args = p.parse_args(argv)
    from MedFusionLib.fusion import default_method_name

    methods = args.methods.split(",") if args.methods else [m.name for m in available_methods() if "slice" in m.modes]
    montage_methods = args.montage_methods.split(",") if args.montage_methods else [default_method_name()]
    out = Path(args.out)
    t0 = time.perf_counter()
    results = evaluate(Path(args.data), methods, args.limit, out, args.split, montage_methods)
    cases = "held-out" if args.split == "val" else "model-selection"
    print(
        f"# Fusion quality, {cases} cases (split by case, seed {D.SPLIT_SEED}); slice mode; 8-bit fused images; "
        "default method marked (default)"
    )
    print(print_table(results, list(results[next(iter(results))]["rows"]), default_method_name()))
    save_results(results, out / f"results-{args.split}.json", t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
