"""Fusion quality on the held-out Harvard cases: our 8 columns per method, next to the published rows.

Usage (from the repository root)::

    python benchmarks/evaluate_quality.py --data ../shared/data [--out out/quality] [--methods a,b] [--limit N]
    # comparing recipes (weights trained with --train-split fit), without looking at the held-out cases:
    MEDFUSION_WEIGHTS_DIR=DIR python benchmarks/evaluate_quality.py --split select --methods max,ifcnn-lite

For each modality pair (CT-MRI, PET-MRI, SPECT-MRI) the held-out split **by case** (the validation cases of
``MedFusionLib.training.data.split_cases``, seed 2024; never used for training or model selection) is fused
by every registered method in slice mode (PET/SPECT as their rounded luma, as in the published protocol),
the fused image rounded to 8 bits, and scored with ``MedFusionLib.metrics.compute_metrics`` (our definitions,
``../shared/docs/metrics-spec.md``). Printed: EN SD SF MI(bits) MI(nats) SCD VIF QABF SSIM, averaged over the
pairs, next to the published rows of ``../shared/docs/targets.md`` (their MI is in nats; their SF divides by
M(N-1), a < 0.2 % difference; their SSIM uses a data range of 2 and a 7x7 uniform window, so it is compared with
our computation of that variant, column ``SSIM dr2``, from ``MedFusionLib.metrics.published_protocol``). Then a
target check for each deep method against max fusion (our 8 columns) and IFCNN's published row (MI in nats,
SSIM dr2). A montage PNG per pair
(sources, then each method) is written under ``--out`` (not committed).
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
from MedFusionLib.training import data as D  # noqa: E402

try:
    from MedFusionLib.metrics import compute_metrics  # noqa: E402
except ImportError:  # pragma: no cover - during parallel development
    from MedFusionLib.metrics.registry import compute_metrics  # noqa: E402
from MedFusionLib.metrics.published_protocol import ssim_published  # noqa: E402

COLUMNS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "QABF", "SSIM")
LN2 = math.log(2)


def _deep_methods() -> tuple:
    """Every registered non-classical method (the rows checked against max fusion and IFCNN)."""
    from MedFusionLib.fusion import available_methods

    return tuple(m.name for m in available_methods() if m.family != "classical")


# Published rows (targets.md): EN SD SF MI(nats) SCD VIF QABF SSIM(dr 2); None = not published.
PUBLISHED = {
    "CT-MRI": {
        "CDDFuse (pub.)": (4.88, 79.17, 38.14, 2.61, 1.41, 0.61, 0.68, 1.34),
        "EMFusion (pub.)": (4.76, 72.76, 22.56, 2.34, 1.32, 0.56, 0.49, 1.31),
        "U2Fusion (pub.)": (4.88, 52.98, 22.54, 2.08, 0.75, 0.37, 0.46, 0.49),
        "IFCNN (pub.)": (4.53, 72.92, 34.89, 2.20, 1.31, 0.48, 0.62, 1.33),
    },
    "PET-MRI": {
        "CDDFuse (pub.)": (4.23, 70.73, 29.57, 2.03, 1.69, 0.71, 0.71, 1.49),
        "EMFusion (pub.)": (4.21, 56.80, 26.01, 1.82, 1.31, 0.62, 0.67, 1.47),
        "IFCNN (pub.)": (None, None, None, None, None, 0.55, 0.64, None),
    },
    "SPECT-MRI": {
        "CDDFuse (pub.)": (3.90, 58.31, 20.87, 2.49, 1.35, 0.97, 0.78, 1.48),
        "EMFusion (pub.)": (3.74, 51.93, 17.14, 1.88, 1.12, 0.71, 0.74, 1.49),
        "IFCNN (pub.)": (None, None, None, None, None, 0.61, 0.70, None),
    },
}


def at_least_published(row: dict, published: tuple) -> tuple:
    """Columns where ``row`` (our metrics, with ``SSIM_dr2``) is at least a published row, and how many are published.

    Compared as published: MI in nats, SSIM with the published protocol's variant.
    """
    ours = [row[c] * LN2 if c == "MI" else row["SSIM_dr2"] if c == "SSIM" else row[c] for c in COLUMNS]
    compared = [(c, o, p) for c, o, p in zip(COLUMNS, ours, published) if p is not None]
    return [c for c, o, p in compared if o >= p], len(compared)


def _fmt(v, width=7, digits=2):
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.{digits}f}"


def evaluate(data_dir: Path, methods, limit: int = 0, out_dir: Path | None = None, split: str = "val"):
    held = D.load_pairs(data_dir, split)
    results = {}
    for pair in D.PAIRS:
        sub = held.subset(pair)
        if not sub.ids:
            continue
        idx = np.arange(len(sub.ids))
        if limit and len(idx) > limit:
            idx = idx[np.linspace(0, len(idx) - 1, limit).astype(int)]
        cases = sorted({D.case_id(sub.ids[i]) for i in idx}, key=int)
        rows, montage = {}, []
        for name in methods:
            t0 = time.perf_counter()
            scores = []
            for k, i in enumerate(idx):
                a, b = sub.images[i, 0], sub.images[i, 1]
                fused = fuse_arrays([a / 255.0, b / 255.0], name)
                fused8 = np.clip(np.floor(fused * 255.0 + 0.5), 0, 255)
                sources = [a.astype(np.float64), b.astype(np.float64)]
                row = compute_metrics(sources, fused8, keys=list(COLUMNS))
                row["SSIM_dr2"] = ssim_published(sources, fused8)
                scores.append(row)
                if k < 4:
                    montage.append((name, k, fused8.astype(np.uint8), a, b))
            rows[name] = {c: float(np.mean([s[c] for s in scores])) for c in COLUMNS + ("SSIM_dr2",)}
            rows[name]["seconds"] = time.perf_counter() - t0
        results[pair] = {
            "n": len(idx),
            "cases": cases,
            "rows": rows,
            "split_name": "held-out" if split == "val" else "model-selection",
        }
        if out_dir is not None:
            _write_montage(out_dir / f"montage-{pair}.png", montage, methods)
    return results


def _write_montage(path: Path, tiles, methods):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(k for _, k, *_ in tiles) + 1
    size = tiles[0][2].shape
    grid = np.zeros((n * size[0], (len(methods) + 2) * size[1]), np.uint8)
    for name, k, fused, a, b in tiles:
        y = k * size[0]
        grid[y : y + size[0], : size[1]] = a
        grid[y : y + size[0], size[1] : 2 * size[1]] = b
        col = 2 + list(methods).index(name)
        grid[y : y + size[0], col * size[1] : (col + 1) * size[1]] = fused
    Image.fromarray(grid).save(path)


def print_table(results, methods, default: str):
    head = f"{'method':<20}" + "".join(
        f"{c:>8}" for c in ("EN", "SD", "SF", "MI bit", "MI nat", "SCD", "VIF", "QABF", "SSIM", "SSIMdr2")
    )
    lines = []
    for pair, res in results.items():
        lines.append(
            f"\n## {pair}: {res['n']} {res.get('split_name', 'held-out')} pairs, cases {', '.join(res['cases'])}"
        )
        lines.append(head)
        for name in methods:
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
            ]
            lines.append(f"{name + (' (default)' if name == default else ''):<20}" + "".join(_fmt(v, 8) for v in vals))
        for name, pub in PUBLISHED.get(pair, {}).items():
            en, sd, sf, mi, scd, vif, qabf, ssim_dr2 = pub
            lines.append(
                f"{name:<20}" + "".join(_fmt(v, 8) for v in (en, sd, sf, None, mi, scd, vif, qabf, None, ssim_dr2))
            )
        lines.append(
            "(pub.: published rows, MI in nats, SSIM with data range 2 and a 7x7 uniform window (column SSIMdr2), "
            "SF over M(N-1); ours: MI in bits and nats, SSIM as pinned (data range 255) and SSIMdr2 as published)"
        )
        mx = res["rows"].get("max")
        ifcnn = PUBLISHED.get(pair, {}).get("IFCNN (pub.)")
        for name in [m for m in methods if m in _deep_methods()]:
            r = res["rows"][name]
            if mx:
                beat_max = [c for c in COLUMNS if r[c] >= mx[c]]
                lines.append(f"check {name}: >= max fusion on {len(beat_max)}/8 ({' '.join(beat_max)})")
            if ifcnn:
                ok, published = at_least_published(r, ifcnn)
                lines.append(
                    f"check {name}: >= IFCNN published on {len(ok)}/{published} published columns ({' '.join(ok)}; "
                    "MI in nats, SSIM as SSIMdr2)"
                )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", default=str(ROOT / "out" / "quality"), help="montages and results.json (not committed)")
    p.add_argument("--methods", default=None, help="comma-separated (default: every registered method)")
    p.add_argument(
        "--split",
        choices=("val", "select"),
        default="val",
        help="val: the held-out cases (the report); select: the model-selection cases (comparing recipes)",
    )
    p.add_argument("--limit", type=int, default=0, help="at most N pairs per modality pair (evenly spaced; 0 = all)")
    args = p.parse_args(argv)
    from MedFusionLib.fusion import default_method_name

    methods = args.methods.split(",") if args.methods else [m.name for m in available_methods() if "slice" in m.modes]
    out = Path(args.out)
    t0 = time.perf_counter()
    results = evaluate(Path(args.data), methods, args.limit, out, args.split)
    cases = "held-out" if args.split == "val" else "model-selection"
    print(
        f"# Fusion quality, {cases} cases (split by case, seed {D.SPLIT_SEED}); slice mode; default method marked (default)"
    )
    print(print_table(results, methods, default_method_name()))
    print(f"\n({time.perf_counter() - t0:.0f} s; montages in {out})")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
