"""How far can QABF go on one modality pair's cases, and what does the rest of the row pay for it?

Usage (from the repository root)::

    python benchmarks/qabf_headroom.py --data ../shared/data [--pair CT-MRI] [--split select] [--limit 15] [--steps 600]

Pixel-wise max fusion scored QABF 0.57 on our held-out CT-MRI cases (2026-11-25), against 0.62 published for IFCNN
on other pairs. This script measures, on evenly spaced pairs of one modality pair and split, without any network:

* ``max``: pixel-wise max fusion;
* ``per-pixel bound``: at every pixel, the better of "F has source A's Sobel gradient" and "F has source B's"
  (each pixel on its own, ignoring that a gradient field must come from one image): an upper bound for QABF;
* ``pixels optimised for QABF``: the fused image's pixels optimised directly for the differentiable QABF of
  ``MedFusionLib.training.losses.edge_preservation`` (Adam, ``--steps`` steps, values kept in 0..1), from the
  Laplacian-pyramid fusion: what the metric alone asks for;
* ``pixels optimised, balanced``: the same from max fusion, with SSIM and closeness to max fusion in the
  objective, ``(1 - Q) + w_ssim (1 - mean SSIM) + w_int L1(F, max)``, for two weightings: what a network trained
  with such a loss could reach at best.

Each row: our 8 columns (``MedFusionLib.metrics``) and SSIM as the published tables compute it (data range 2).

The default split is ``select`` (model-selection cases), since what this shows can steer a choice. The one
recorded run (2026-11-25, ``docs/history.md``) used ``--split val``, the held-out cases, when ``val`` was the default.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MedFusionLib.fusion import fuse_arrays  # noqa: E402
from MedFusionLib.metrics import compute_metrics  # noqa: E402
from MedFusionLib.metrics.published_protocol import ssim_published  # noqa: E402
from MedFusionLib.metrics.structural import _sobel_strength_angle  # noqa: E402
from MedFusionLib.metrics.structural import edge_preservation as q_map
from MedFusionLib.training import data as D  # noqa: E402

COLUMNS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "QABF", "SSIM")
BALANCED = ((1.0, 4.0, 1.0), (1.0, 1.0, 4.0))  # (w_edge, w_ssim, w_int)


def per_pixel_bound(a: np.ndarray, b: np.ndarray) -> float:
    """QABF if every pixel could take whichever source's Sobel gradient scores better there."""
    ga, oa = _sobel_strength_angle(a)
    gb, ob = _sobel_strength_angle(b)
    as_a = q_map(ga, oa, ga, oa) * ga + q_map(gb, ob, ga, oa) * gb
    as_b = q_map(ga, oa, gb, ob) * ga + q_map(gb, ob, gb, ob) * gb
    return float(np.maximum(as_a, as_b).sum() / (ga + gb).sum())


def optimise_pixels(a: np.ndarray, b: np.ndarray, start: np.ndarray, steps: int, weights=(1.0, 0.0, 0.0)) -> np.ndarray:
    """Adam on the fused image's pixels (0..1) for ``w_edge (1 - Q) + w_ssim (1 - mean SSIM) + w_int L1(F, max)``."""
    import torch

    from MedFusionLib.training.losses import edge_preservation, ssim

    w_edge, w_ssim, w_int = weights
    t = lambda x: torch.tensor(x / 255.0, dtype=torch.float32)[None, None]  # noqa: E731
    ta, tb = t(a), t(b)
    sources, top = torch.stack([ta, tb]), torch.maximum(ta, tb)
    fused = t(start).requires_grad_(True)
    opt = torch.optim.Adam([fused], lr=2 / 255)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        loss = w_edge * (1 - edge_preservation(fused, sources)).mean()
        if w_ssim:
            loss = loss + w_ssim * (1 - (ssim(fused, ta) + ssim(fused, tb)).mean() / 2)
        if w_int:
            loss = loss + w_int * (fused - top).abs().mean()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            fused.clamp_(0, 1)
    return fused.detach().numpy()[0, 0] * 255.0


def run(data_dir: Path, pair: str, split: str, limit: int, steps: int):
    import torch

    torch.manual_seed(0)
    sub = D.load_pairs(data_dir, split).subset(pair)
    idx = np.linspace(0, len(sub.ids) - 1, min(limit, len(sub.ids))).astype(int)
    rows = {}
    bound = []
    for i in idx:
        a, b = sub.images[i, 0].astype(np.float64), sub.images[i, 1].astype(np.float64)
        top = np.maximum(a, b)
        lap = fuse_arrays([a / 255.0, b / 255.0], "laplacian") * 255.0
        candidates = {"max": top, "pixels optimised for QABF": optimise_pixels(a, b, lap, steps)}
        for w in BALANCED:
            name = f"pixels optimised, balanced (w_edge {w[0]:g}, w_ssim {w[1]:g}, w_int {w[2]:g})"
            candidates[name] = optimise_pixels(a, b, top, steps, w)
        for name, fused in candidates.items():
            fused8 = np.clip(np.floor(fused + 0.5), 0, 255)
            r = compute_metrics([a, b], fused8, keys=list(COLUMNS))
            r["SSIMdr2"] = ssim_published([a, b], fused8)
            rows.setdefault(name, []).append(r)
        bound.append(per_pixel_bound(a, b))
    return len(idx), sorted({D.case_id(sub.ids[i]) for i in idx}, key=int), rows, float(np.mean(bound))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--pair", default="CT-MRI", choices=D.PAIRS)
    p.add_argument(
        "--split",
        default="select",
        choices=("select", "val", "train"),
        help="select: the model-selection cases (the default: anything this informs is a choice); val: the held-out "
        "cases, for a final report only",
    )
    p.add_argument("--limit", type=int, default=15, help="evenly spaced pairs (default 15)")
    p.add_argument("--steps", type=int, default=600, help="optimiser steps per image (default 600)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    n, cases, rows, bound = run(Path(args.data), args.pair, args.split, args.limit, args.steps)
    print(
        f"# QABF headroom, {args.pair}, {n} {args.split} pairs (cases {', '.join(cases)}), {args.steps} optimiser steps"
    )
    print("| fused image | " + " | ".join(COLUMNS) + " | SSIM dr2 |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for name, scores in rows.items():
        print(
            f"| {name} | " + " | ".join(f"{np.mean([s[c] for s in scores]):.3f}" for c in COLUMNS + ("SSIMdr2",)) + " |"
        )
    print("| per-pixel bound (QABF only) | " + " | ".join("-" for _ in COLUMNS[:6]) + f" | {bound:.3f} | - | - |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
