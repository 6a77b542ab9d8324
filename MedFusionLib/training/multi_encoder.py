"""Training of the multi-encoder network on pairs and triples (``medfusion train multi-encoder --data ../shared/data``).

Data, all aligned by construction:

* **pairs**: the Harvard slice pairs of part 1's by-case training split (CT-MRI, PET-MRI, SPECT-MRI);
* **triples**: axial slices of the SPM12 templates (one MNI-space subject set), four triples
  ``TRIPLES`` (T1/T2/PD, T1/T2/PET, T1/PD/SPECT, T2/PD/PET), each volume scaled to 0..1 by its 99.5th
  foreground percentile (``data.normalise_volume``), SPECT resampled onto the T1 grid (its header flips x),
  slices upsampled x2 in-plane (2 mm -> 1 mm, about the Harvard pixel size).

Held-out for the triples: the axial slab ``VAL_Z`` (12 slices through the ventricles and basal ganglia), with
``GUARD`` slices on each side used by neither split (neighbouring slices are nearly identical). The SPM
templates are a single (averaged) subject, so this is a hold-out by location, not by subject; the pairs are
held out by case as in part 1.

Each step draws a pairs batch or a triples batch (half each) and a random permutation of the inputs, so the
three encoders are not tied to a modality and the fusion hardly depends on the input order. Loss: part 1's
unsupervised fusion loss (SSIM + gradient + intensity), which is defined for any number of sources.

``python -m MedFusionLib.training.multi_encoder --data ../shared/data [--methods a,b]`` prints the N = 3
evaluation table (held-out slab, every N-input method) of docs/deep-fusion-part2.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.networks import build_network
from MedFusionLib.training import data as D
from MedFusionLib.training import trainer as T
from MedFusionLib.training.adversarial import write_card
from MedFusionLib.training.losses import FusionLoss
from MedFusionLib.training.recipes import RECIPES, Recipe
from MedFusionLib.training.trainer import cosine

RECIPE = RECIPES["multi-encoder"]  # defined with the others in recipes.py
TRIPLES = (("T1", "T2", "PD"), ("T1", "T2", "PET"), ("T1", "PD", "SPECT"), ("T2", "PD", "PET"))
VAL_Z = tuple(range(50, 62))
GUARD = 4
UPSAMPLE = 2
TRIPLE_FRACTION = 0.5
VAL_METRICS = ("QABF", "SSIM", "VIF", "MI", "SD")
EVAL_COLUMNS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "QABF", "SSIM")


def load_spm_slices(data_dir: Path) -> dict[str, np.ndarray]:
    """SPM templates as float32 (z, 2y, 2x) in 0..1 on the T1 grid, axial slices upsampled x2 in-plane."""
    import SimpleITK as sitk
    from scipy import ndimage

    root = Path(data_dir)
    root = root / "volumes" if (root / "volumes").is_dir() else root
    names = sorted({n for t in TRIPLES for n in t})
    paths = {n: root / "spm" / f"{n}.nii.gz" for n in names}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise MedFusionError(f"SPM templates missing: {', '.join(missing)}")
    ref = sitk.Cast(sitk.ReadImage(str(paths["T1"])), sitk.sitkFloat32)
    out = {}
    for name, path in paths.items():
        image = sitk.Resample(
            sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkFloat32), ref, sitk.Transform(), sitk.sitkLinear, 0.0
        )
        vol = D.normalise_volume(sitk.GetArrayFromImage(image))
        out[name] = np.clip(ndimage.zoom(vol, (1, UPSAMPLE, UPSAMPLE), order=1), 0, 1).astype(np.float32)
    return out


def triple_slices(volumes: dict[str, np.ndarray], split: str) -> list[np.ndarray]:
    """(3, H, W) slices of every triple for ``split`` ("train": outside the held-out slab and its guard; "val")."""
    depth = volumes["T1"].shape[0]
    lo, hi = min(VAL_Z), max(VAL_Z)
    if split == "val":
        zs = list(VAL_Z)
    else:
        zs = [z for z in range(depth) if z < lo - GUARD or z > hi + GUARD]
    out = []
    for triple in TRIPLES:
        for z in zs:
            s = np.stack([volumes[n][z] for n in triple])
            if (s.max(axis=0) > 0.05).mean() > 0.05:
                out.append(s)
    return out


class PairsAndTriples:
    """Batches of pairs (Harvard) or triples (SPM), inputs randomly permuted; validation material for both."""

    def __init__(self, recipe: Recipe, data_dir: Path, split_seed: int, train_split: str = "train") -> None:
        self.recipe = recipe
        self.pairs = T._Data(replace(recipe, data="pairs"), data_dir, split_seed, train_split)
        volumes = load_spm_slices(data_dir)
        self.train_triples = triple_slices(volumes, "train")
        val = triple_slices(volumes, "val")
        self.val_triples = val[:: max(1, len(val) // 16)]
        self.val_pairs = self.pairs.val_pairs
        self.summary = (
            f"pairs: {self.pairs.summary}; triples: {len(self.train_triples)} SPM axial slices x triple for training, "
            f"held-out slab z {VAL_Z[0]}-{VAL_Z[-1]} (guard {GUARD}), {len(self.val_triples)} held-out triples used for validation"
        )

    def batch(self, rng: np.random.Generator) -> torch.Tensor:
        r = self.recipe
        if rng.random() < TRIPLE_FRACTION:
            items = [
                D.augment_pair(self.train_triples[rng.integers(len(self.train_triples))], rng, r.crop)
                for _ in range(r.batch)
            ]
            x = torch.from_numpy(np.stack(items, axis=1)).unsqueeze(2)
        else:
            x = self.pairs.batch(rng)
        return x[torch.from_numpy(rng.permutation(x.shape[0]))]


@torch.no_grad()
def validate_triples(net, triples: Sequence[np.ndarray]) -> dict[str, float]:
    """Metrics of the network's fusion of held-out triples (keys suffixed ``_3``)."""
    from MedFusionLib.metrics import compute_metrics

    net.eval()
    rows = []
    for s in triples:
        fused = net(torch.from_numpy(s)[:, None, None]).clamp(0, 1)[0, 0].numpy()
        rows.append(compute_metrics([c * 255.0 for c in s], np.floor(fused * 255.0 + 0.5), keys=list(VAL_METRICS)))
    net.train()
    return {f"{k}_3": float(np.mean([r[k] for r in rows])) for k in VAL_METRICS}


def train_multi_encoder(method: str, data_dir, opts: T.TrainOptions | None = None, data=None, **options) -> dict:
    """Train the multi-encoder recipe; same arguments and result as :func:`trainer.train` (``data``: tests only)."""
    opts = opts or T.TrainOptions(**options)
    recipe = opts.recipe(method)
    data_dir = Path(data_dir)
    if data is None and not data_dir.is_dir():
        raise MedFusionError(f"{data_dir}: no such data folder")
    out = opts.weights_path(method)
    checkpoint_dir = opts.checkpoint_path(method)
    T.seed_everything(opts.seed, opts.threads)
    data = data if data is not None else PairsAndTriples(recipe, data_dir, opts.split_seed, opts.train_split)
    net = build_network(recipe.network, recipe.config)
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    total = recipe.epochs * recipe.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine(total))
    loss_fn = FusionLoss(**recipe.loss_args)
    rng = np.random.default_rng(opts.seed)
    history: list[dict] = []
    start_epoch, elapsed_before = 0, 0.0
    states = {"model": net, "optimizer": opt, "scheduler": sched}
    if opts.resume:
        ckpt = T.resume_from(opts, recipe, states, rng)
        history, start_epoch, elapsed_before = ckpt["history"], ckpt["epoch"], ckpt["elapsed"]
    log = opts.log
    log(
        f"[{method}] {data.summary}; {recipe.epochs} epochs x {recipe.steps_per_epoch} steps, batch {recipe.batch}, crop {recipe.crop}"
    )
    val_recipe = replace(recipe, loss="fusion")

    net.train()
    t0 = time.perf_counter()
    for epoch in range(start_epoch, recipe.epochs):
        losses = []
        for _ in range(recipe.steps_per_epoch):
            x = data.batch(rng)
            loss = loss_fn(net(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": sched.get_last_lr()[0]}
        if (epoch + 1) % opts.validate_every == 0 or epoch + 1 == recipe.epochs:
            if getattr(data, "val_pairs", None) is not None:
                row.update(T.validate(net, val_recipe, data, loss_fn))
            if getattr(data, "val_triples", None):
                row.update(validate_triples(net, data.val_triples))
        row["elapsed_s"] = elapsed_before + time.perf_counter() - t0
        T.finish_epoch(method, recipe, opts, checkpoint_dir, epoch, row, history, states, rng)

    wall = elapsed_before + time.perf_counter() - t0
    meta = T.training_meta(method, recipe, opts, data.summary, wall, history)
    final = meta["final"]
    T.export_weights(net, recipe, out, meta)
    write_card(
        net,
        recipe,
        meta,
        history,
        out,
        [
            (
                "data",
                "Harvard atlas training pairs (as part 1: PET/SPECT as rounded luma) and SPM12 template triples "
                f"{', '.join('/'.join(t) for t in TRIPLES)} (axial slices upsampled x2, each volume 0..1 by its 99.5th foreground percentile); "
                f"{int(TRIPLE_FRACTION * 100)} % of the batches are triples; inputs randomly permuted per batch",
            ),
            (
                "split",
                f"pairs by case id (seed {opts.split_seed}); triples by location: held-out axial slab z {VAL_Z[0]}-{VAL_Z[-1]} with a {GUARD}-slice guard "
                f"on each side (the templates are one averaged subject). {data.summary}",
            ),
            (
                "loss",
                f"unsupervised fusion loss over all N sources: w_ssim (1 - mean_i SSIM(F, S_i)) + w_grad L1(|grad F|, max_i |grad S_i|) + w_int L1(F, max_i S_i); `{json.dumps(recipe.loss_args)}`",
            ),
            (
                "augmentation",
                f"random crop {recipe.crop} (containing foreground), flips, 90-degree rotations, per-source gain 0.8-1.2 and gamma 0.8-1.25",
            ),
        ],
        note="Columns with suffix `_3` are N = 3 fusions of held-out SPM triples; the others are the Harvard held-out pairs (N = 2).",
    )
    log(f"[{method}] wrote {out} ({out.stat().st_size} bytes) after {wall:.0f} s")
    return {"weights": str(out), "history": history, "final": final, "train_seconds": wall, "data": data.summary}


def evaluate_triples(data_dir, methods: Sequence[str], every: int = 2) -> dict[str, dict[str, dict[str, float]]]:
    """N = 3 quality on the held-out SPM slab: {triple: {method: {column: mean}}}, slice mode, 8-bit fused."""
    from MedFusionLib.fusion import fuse_arrays
    from MedFusionLib.metrics import compute_metrics

    volumes = load_spm_slices(Path(data_dir))
    results: dict[str, dict[str, dict[str, float]]] = {}
    for triple in TRIPLES:
        slices = [np.stack([volumes[n][z] for n in triple]) for z in VAL_Z[::every]]
        key = "/".join(triple)
        results[key] = {}
        for name in methods:
            t0 = time.perf_counter()
            rows = []
            for s in slices:
                src8 = np.floor(s * 255.0 + 0.5)
                fused = fuse_arrays(list(src8 / 255.0), name)
                rows.append(compute_metrics(list(src8), np.floor(fused * 255.0 + 0.5), keys=list(EVAL_COLUMNS)))
            results[key][name] = {c: float(np.mean([r[c] for r in rows])) for c in EVAL_COLUMNS}
            results[key][name]["seconds"] = time.perf_counter() - t0
    return results


def main(argv=None) -> int:
    from MedFusionLib.fusion import available_methods

    p = argparse.ArgumentParser(
        description="N = 3 fusion quality on the held-out SPM slab (every method that takes N inputs)"
    )
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--methods", default=None, help="comma-separated (default: every registered N-input method)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    methods = (
        args.methods.split(",")
        if args.methods
        else [m.name for m in available_methods() if m.accepts(3) and "slice" in m.modes]
    )
    t0 = time.perf_counter()
    results = evaluate_triples(args.data, methods)
    print(
        f"# N = 3 fusion quality: SPM template triples, held-out axial slab z {VAL_Z[0]}-{VAL_Z[-1]} (every 2nd slice, x2 upsampled), slice mode, 8-bit"
    )
    for triple, rows in results.items():
        print(f"\n## {triple}\n| method | " + " | ".join(c if c != "MI" else "MI (bits)" for c in EVAL_COLUMNS) + " |")
        print("|---" * (len(EVAL_COLUMNS) + 1) + "|")
        for name, r in rows.items():
            print(f"| {name} | " + " | ".join(f"{r[c]:.3f}" for c in EVAL_COLUMNS) + " |")
    mean = {name: {c: float(np.mean([results[t][name][c] for t in results])) for c in EVAL_COLUMNS} for name in methods}
    print("\n## mean over the four triples\n| method | " + " | ".join(EVAL_COLUMNS) + " |")
    print("|---" * (len(EVAL_COLUMNS) + 1) + "|")
    for name, r in mean.items():
        print(f"| {name} | " + " | ".join(f"{r[c]:.3f}" for c in EVAL_COLUMNS) + " |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"per_triple": results, "mean": mean}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
