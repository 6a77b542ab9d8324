"""Compare IFCNN-lite recipe variants on the model-selection cases, never on the held-out ones.

Usage (from the repository root)::

    python benchmarks/recipe_selection.py --data ../shared/data [--only base,e4] [--out out/recipe-selection] [--time]

Each variant (network shape and loss weights over the shipped ``max-residual-cnn`` recipe) is trained with
``train_split="fit"`` (the training cases less the model-selection cases, see
``MedFusionLib.training.data.split_cases``), one torch thread, seed 0, then run on every model-selection pair
(the network on the whole 256 x 256 slice, as in training) and scored with our 8 columns, SSIM as the published
tables compute it, the count of columns at or above max fusion on the same pairs, and for CT-MRI the count at or
above IFCNN's published row. Training writes to ``--out`` (not committed); existing weights there are reused.
``--time``: also the seconds per 256 x 256 x 200 volume in slice mode through the registered ``max-residual-cnn`` method
(the speed benchmark's SPM volume, ``--threads`` torch threads, best of 3), each variant's weights put in place
with ``MEDFUSION_WEIGHTS_DIR``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from evaluate_quality import COLUMNS, PUBLISHED, at_least_published  # noqa: E402

from MedFusionLib.metrics import compute_metrics  # noqa: E402
from MedFusionLib.metrics.published_protocol import ssim_published  # noqa: E402
from MedFusionLib.training import data as D  # noqa: E402

IFCNN_CT_MRI = PUBLISHED["CT-MRI"]["IFCNN (pub.)"]

# name: (network config overrides, loss overrides); "base" is the recipe before the edge-preservation term
VARIANTS = {
    "base": ({}, {"w_edge": 0.0}),
    "e4": ({}, {"w_edge": 4.0}),
    "e12": ({}, {"w_edge": 12.0}),
    "e40": ({}, {"w_edge": 40.0}),
    "e8-r2": ({"recon_layers": 2}, {"w_edge": 8.0}),
    "e8-c16": ({"channels": 16}, {"w_edge": 8.0}),
    "e8-c16-r2": ({"channels": 16, "recon_layers": 2}, {"w_edge": 8.0}),
    "e20-c16-r2": ({"channels": 16, "recon_layers": 2}, {"w_edge": 20.0}),
    "e40-x2-r2": ({"extract_layers": 2, "recon_layers": 2}, {"w_edge": 40.0}),
    "e20-c16-x2-r2": ({"channels": 16, "extract_layers": 2, "recon_layers": 2}, {"w_edge": 20.0}),
    "e40-c16-x2-r2": ({"channels": 16, "extract_layers": 2, "recon_layers": 2}, {"w_edge": 40.0}),
}


def score(fuse, pairs):
    """Mean of our 8 columns and the published SSIM over ``pairs`` (uint8 (n, 2, H, W))."""
    rows = []
    for a, b in pairs.astype(np.float64):
        fused = np.clip(np.floor(fuse(a / 255.0, b / 255.0) * 255.0 + 0.5), 0, 255)
        r = compute_metrics([a, b], fused, keys=list(COLUMNS))
        r["SSIM_dr2"] = ssim_published([a, b], fused)
        rows.append(r)
    return {c: float(np.mean([r[c] for r in rows])) for c in COLUMNS + ("SSIM_dr2",)}


def network_fuser(path: Path):
    import torch

    from MedFusionLib.inference.runtime import load_network, run_slices

    net = load_network(path.stem, str(path))
    torch.set_num_threads(1)
    return lambda a, b: run_slices(net, np.stack([a[None], b[None]]).astype(np.float32))[0]


def volume_seconds(weights: Path, data: str, threads: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` seconds to fuse the speed benchmark's 256x256x200 volume with ``weights`` as max-residual-cnn."""
    import os
    import tempfile

    from fusion_speed_benchmark import real_volume

    from MedFusionLib.fusion import fuse_arrays
    from MedFusionLib.inference.runtime import load_network

    a, b = real_volume(Path(data))
    os.environ["MEDFUSION_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(weights.resolve(), Path(tmp) / "max-residual-cnn.pt")
        os.environ["MEDFUSION_WEIGHTS_DIR"] = tmp
        load_network.cache_clear()
        try:
            fuse_arrays([a[:8], b[:8]], "max-residual-cnn", mode="slice")  # warm-up
            best = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                fuse_arrays([a, b], "max-residual-cnn", mode="slice")
                best = min(best, time.perf_counter() - t0)
        finally:
            del os.environ["MEDFUSION_WEIGHTS_DIR"]
            load_network.cache_clear()
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--only", default=None, help="comma-separated variant names (default: all)")
    p.add_argument("--out", default=str(ROOT / "out" / "recipe-selection"))
    p.add_argument("--time", action="store_true", help="also time each variant on a 256x256x200 volume (slice mode)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for --time (default 2)")
    args = p.parse_args(argv)
    from MedFusionLib.training import train

    names = args.only.split(",") if args.only else list(VARIANTS)
    out = Path(args.out)
    select = D.load_pairs(args.data, "select")
    subsets = {pair: select.subset(pair).images for pair in D.PAIRS}
    reference = {pair: score(np.maximum, imgs) for pair, imgs in subsets.items()}
    print(
        f"# IFCNN-lite variants on the model-selection cases ({', '.join(sorted({D.case_id(i) for i in select.ids}, key=int))}); "
        "trained on the fit cases"
    )
    print(
        "| variant | config | loss | train s | pair | "
        + " | ".join(COLUMNS)
        + " | SSIM dr2 | >= max | >= IFCNN (CT-MRI) |"
    )
    print("|---" * (len(COLUMNS) + 8) + "|")
    timings = {}
    for name in ["max"] + names:
        seconds = "-"
        if name == "max":
            rows, config, loss = reference, "-", "-"
        else:
            config, loss = VARIANTS[name]
            weights = out / f"{name}.pt"
            if not weights.exists():
                t0 = time.perf_counter()
                train(
                    "max-residual-cnn",
                    args.data,
                    out=weights,
                    train_split="fit",
                    config_overrides=config,
                    loss_overrides=loss,
                    threads=1,
                    quiet=True,
                    checkpoint_dir=out / f"ck-{name}",
                    validate_every=1000,
                )
                seconds = f"{time.perf_counter() - t0:.0f}"
            fuse = network_fuser(weights)
            rows = {pair: score(fuse, imgs) for pair, imgs in subsets.items()}
            if args.time:
                timings[name] = volume_seconds(weights, args.data, args.threads)
        for pair, r in rows.items():
            beat = [c for c in COLUMNS if r[c] >= reference[pair][c]]
            ifcnn = "-"
            if pair == "CT-MRI":
                ok, published = at_least_published(r, IFCNN_CT_MRI)
                ifcnn = f"{len(ok)}/{published} {' '.join(ok)}"
            print(
                f"| {name} | {config} | {loss} | {seconds} | {pair} | "
                + " | ".join(f"{r[c]:.3f}" for c in COLUMNS)
                + f" | {r['SSIM_dr2']:.3f} | {len(beat)}/8 {' '.join(beat)} | {ifcnn} |",
                flush=True,
            )
    if timings:
        print(f"\n| variant | s per 256x256x200 volume, slice mode, {args.threads} threads (best of 3) |\n|---|---|")
        for name, seconds in timings.items():
            print(f"| {name} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
