"""Training of the Chartsias et al. network on labelled pairs and triples (``medfusion train chartsias --data ../shared/data``).

Data, all aligned by construction, every sample carrying its inputs' modalities (which pick the encoders):

* **pairs**: the Harvard slice pairs of the training split (``--train-split``: ``train`` or ``fit``), labelled
  from their folder: CT-MRI = (ct, mr), PET-MRI = (pet, mr), SPECT-MRI = (spect, mr);
* **triples**: axial slices of the SPM12 templates (one MNI-space subject set), four triples ``TRIPLES``
  (T1/T2/PD, T1/T2/PET, T1/PD/SPECT, T2/PD/PET; T1, T2 and PD are ``mr``), each volume scaled to 0..1 by its
  99.5th foreground percentile (``data.normalise_volume``), SPECT resampled onto the T1 grid (its header flips
  x), slices upsampled x2 in-plane (2 mm -> 1 mm, about the Harvard pixel size).

Held-out for the triples: the axial slab ``VAL_Z`` (12 slices through the ventricles and basal ganglia), with
``GUARD`` slices on each side used by neither split (neighbouring slices are nearly identical). The SPM
templates are a single (averaged) subject, so this is a hold-out by location, not by subject.

Each step draws one group (one SPM triple in ``TRIPLE_FRACTION`` of the steps, else one of the three Harvard
modality pairs, each equally often: only the CT-MRI pairs train the ``ct`` encoder), a batch of that group (so one modality list serves the whole batch), and applies **missing-input
dropout**: in ``DROP_FRACTION`` of the steps a random non-empty proper subset of the inputs is kept (any size
from 1 to n - 1, uniformly), otherwise all of them. A single kept input is trained to come back through its
encoder and the decoder (the fusion loss of one source), as the paper decodes every single latent. Loss: the
unsupervised fusion loss of ``training/losses.py`` over the kept sources (no latent-similarity term: the
modality-invariance it asks for would work against keeping complementary detail; see docs/methods/chartsias.md).

``python -m MedFusionLib.training.chartsias --data ../shared/data [--methods a,b]`` prints the N = 3
evaluation table (held-out slab, every N-input method; each method gets the triples' modalities).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
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

RECIPE = RECIPES["chartsias"]  # defined with the others in recipes.py
TRIPLES = (("T1", "T2", "PD"), ("T1", "T2", "PET"), ("T1", "PD", "SPECT"), ("T2", "PD", "PET"))
SPM_MODALITY = {"T1": "mr", "T2": "mr", "PD": "mr", "PET": "pet", "SPECT": "spect"}
PAIR_MODALITIES = D.PAIR_MODALITIES
VAL_Z = tuple(range(50, 62))
GUARD = 4
UPSAMPLE = 2
TRIPLE_FRACTION = 0.3
DROP_FRACTION = 0.4
VAL_METRICS = ("QABF", "SSIM", "VIF", "MI", "SD")
VAL_PER_GROUP = 8
EVAL_COLUMNS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "QABF", "SSIM")


def triple_modalities(triple: Sequence[str]) -> tuple[str, ...]:
    """The modality names (``mr``, ``pet``, ``spect``) of SPM template names such as ("T1", "T2", "PET")."""
    return tuple(SPM_MODALITY[name] for name in triple)


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


def triple_slices(volumes: dict[str, np.ndarray], split: str) -> dict[tuple[str, ...], list[np.ndarray]]:
    """{triple: (3, H, W) slices} for ``split`` ("train": outside the held-out slab and its guard; "val")."""
    depth = volumes["T1"].shape[0]
    lo, hi = min(VAL_Z), max(VAL_Z)
    zs = list(VAL_Z) if split == "val" else [z for z in range(depth) if z < lo - GUARD or z > hi + GUARD]
    out: dict[tuple[str, ...], list[np.ndarray]] = {}
    for triple in TRIPLES:
        stack = [np.stack([volumes[n][z] for n in triple]) for z in zs]
        out[triple] = [s for s in stack if (s.max(axis=0) > 0.05).mean() > 0.05]
    return out


class Group:
    """Aligned samples (n, H, W) in 0..1 that share one modality list."""

    def __init__(self, name: str, modalities: Sequence[str], samples: Sequence[np.ndarray]) -> None:
        self.name = name
        self.modalities = tuple(modalities)
        self.samples = list(samples)


class LabelledPairsAndTriples:
    """Batches of Harvard pairs or SPM triples with their modalities, after missing-input dropout."""

    def __init__(self, recipe: Recipe, data_dir: Path, split_seed: int, train_split: str = "train") -> None:
        self.recipe = recipe
        if train_split not in T.TRAIN_SPLITS:
            raise MedFusionError(f"train_split must be one of {', '.join(T.TRAIN_SPLITS)}, not {train_split!r}")
        train = D.load_pairs(data_dir, train_split, split_seed)
        val = D.load_pairs(data_dir, T.TRAIN_SPLITS[train_split], split_seed)
        self.pair_groups = self._pair_groups(train, None)
        self.val_groups = self._pair_groups(val, VAL_PER_GROUP)
        volumes = load_spm_slices(data_dir)
        self.triple_groups = [
            Group("/".join(t), triple_modalities(t), s) for t, s in triple_slices(volumes, "train").items()
        ]
        self.val_groups += [
            Group("/".join(t), triple_modalities(t), s[:: max(1, len(s) // 4)][:4])
            for t, s in triple_slices(volumes, "val").items()
        ]
        held = sorted({D.case_id(i) for i in val.ids}, key=int)
        role = "held-out" if train_split == "train" else "model-selection"
        n_triples = sum(len(g.samples) for g in self.triple_groups)
        self.summary = (
            f"pairs: {len(train.ids)} {train_split} pairs ({len(set(map(D.case_id, train.ids)))} cases), "
            f"{role} cases {', '.join(held)} for validation; triples: {n_triples} SPM axial slices x triple for training, "
            f"held-out slab z {VAL_Z[0]}-{VAL_Z[-1]} (guard {GUARD})"
        )

    @staticmethod
    def _pair_groups(pairs: D.PairSet, limit: int | None) -> list[Group]:
        groups = []
        for kind, modalities in PAIR_MODALITIES.items():
            sub = pairs.subset(kind)
            if not sub.ids:
                continue
            images = sub.images.astype(np.float32) / 255.0
            if limit and len(images) > limit:
                images = images[np.linspace(0, len(images) - 1, limit).astype(int)]
            groups.append(Group(kind, modalities, list(images)))
        return groups

    def batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, tuple[str, ...]]:
        """(inputs (k, batch, 1, crop, crop), their k modalities) of one group, after missing-input dropout."""
        r = self.recipe
        if self.triple_groups and rng.random() < TRIPLE_FRACTION:
            group = self.triple_groups[rng.integers(len(self.triple_groups))]
        else:  # the three pair kinds equally often, whatever their numbers of pairs (CT-MRI has the fewest)
            group = self.pair_groups[rng.integers(len(self.pair_groups))]
        items = [D.augment_pair(group.samples[rng.integers(len(group.samples))], rng, r.crop) for _ in range(r.batch)]
        x = torch.from_numpy(np.stack(items, axis=1)).unsqueeze(2)
        return drop_inputs(x, group.modalities, rng)


def drop_inputs(
    x: torch.Tensor, modalities: Sequence[str], rng: np.random.Generator, fraction: float = DROP_FRACTION
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Missing-input dropout: in ``fraction`` of the calls keep a random non-empty proper subset of the inputs
    (its size uniform in 1..n-1), else all; the kept inputs in a random order, their modalities alongside."""
    n = x.shape[0]
    keep = n
    if n > 1 and rng.random() < fraction:
        keep = int(rng.integers(1, n))
    chosen = rng.permutation(n)[:keep]
    return x[torch.from_numpy(chosen)], tuple(modalities[i] for i in chosen)


@torch.no_grad()
def validate_groups(net, groups: Sequence[Group], loss_fn) -> dict[str, float]:
    """Loss and metrics of the network's fusion of the validation groups: pairs unsuffixed, triples ``_3``."""
    from MedFusionLib.metrics import compute_metrics

    net.eval()
    rows: dict[int, list[dict]] = {2: [], 3: []}
    losses = []
    for group in groups:
        x = torch.from_numpy(np.stack(group.samples, axis=1)).unsqueeze(2)
        fused = net(x, group.modalities).clamp(0, 1)
        losses.append(float(loss_fn(fused, x)))
        for i in range(fused.shape[0]):
            sources = [s * 255.0 for s in group.samples[i]]
            rows[len(group.modalities)].append(
                compute_metrics(sources, np.floor(fused[i, 0].numpy() * 255.0 + 0.5), keys=list(VAL_METRICS))
            )
    net.train()
    out = {"val_loss": float(np.mean(losses))}
    for n, suffix in ((2, ""), (3, "_3")):
        if rows[n]:
            out.update({f"{k}{suffix}": float(np.mean([r[k] for r in rows[n]])) for k in VAL_METRICS})
    return out


def train_chartsias(method: str, data_dir, opts: T.TrainOptions | None = None, data=None, **options) -> dict:
    """Train the chartsias recipe; same arguments and result as :func:`trainer.train` (``data``: tests only)."""
    opts, recipe, data_dir, out, checkpoint_dir = T.start_run(method, data_dir, opts, options, data is not None)
    data = data if data is not None else LabelledPairsAndTriples(recipe, data_dir, opts.split_seed, opts.train_split)
    net = build_network(recipe.network, recipe.config)
    opt, sched, rng, states, history, start_epoch, elapsed_before = T.start_loop(net, recipe, opts)
    loss_fn = FusionLoss(**recipe.loss_args)
    log = opts.log
    log(
        f"[{method}] {data.summary}; {recipe.epochs} epochs x {recipe.steps_per_epoch} steps, batch {recipe.batch}, crop {recipe.crop}"
    )

    net.train()
    t0 = time.perf_counter()
    for epoch in range(start_epoch, recipe.epochs):
        losses = []
        for _ in range(recipe.steps_per_epoch):
            x, modalities = data.batch(rng)
            loss = loss_fn(net(x, modalities), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": sched.get_last_lr()[0]}
        if ((epoch + 1) % opts.validate_every == 0 or epoch + 1 == recipe.epochs) and getattr(data, "val_groups", None):
            row.update(validate_groups(net, data.val_groups, loss_fn))
        row["elapsed_s"] = elapsed_before + time.perf_counter() - t0
        T.finish_epoch(method, recipe, opts, checkpoint_dir, epoch, row, history, states, rng)

    wall = elapsed_before + time.perf_counter() - t0
    meta = T.training_meta(method, recipe, opts, data.summary, wall, history)
    final = meta["final"]
    T.export_weights(net, recipe, out, meta)
    role = "held-out" if opts.train_split == "train" else "model-selection"
    write_card(
        net,
        recipe,
        meta,
        history,
        out,
        [
            (
                "data",
                "Harvard atlas pairs (PET/SPECT as rounded luma) labelled by folder: CT-MRI = (ct, mr), PET-MRI = (pet, mr), "
                f"SPECT-MRI = (spect, mr); SPM12 template triples {', '.join('/'.join(t) for t in TRIPLES)} (T1/T2/PD = mr; "
                "axial slices upsampled x2, each volume 0..1 by its 99.5th foreground percentile); "
                f"{int(TRIPLE_FRACTION * 100)} % of the batches are triples, the others one of the three pair kinds equally often; one group (modality list) per batch; "
                f"missing-input dropout: {int(DROP_FRACTION * 100)} % of the batches keep a random non-empty proper subset of the inputs",
            ),
            (
                "split",
                f"pairs by case id (seed {opts.split_seed}, training split `{opts.train_split}`, validation rows from the {role} cases); "
                f"triples by location: held-out axial slab z {VAL_Z[0]}-{VAL_Z[-1]} with a {GUARD}-slice guard on each side "
                f"(the templates are one averaged subject). {data.summary}",
            ),
            (
                "loss",
                "unsupervised fusion loss over the kept sources: w_ssim (1 - mean_i SSIM(F, S_i)) + w_grad L1(|grad F|, "
                "grad_gain max_i |grad S_i|) + w_int L1(F, max_i S_i) + w_edge (1 - QABF-like edge preservation); "
                f"`{json.dumps(recipe.loss_args)}`; no latent-similarity term",
            ),
            (
                "augmentation",
                f"random crop {recipe.crop} (containing foreground), flips, 90-degree rotations, per-source gain 0.8-1.2 and gamma 0.8-1.25",
            ),
        ],
        note=f"Validation rows: {role} Harvard pairs ({VAL_PER_GROUP} per modality pair, N = 2, unsuffixed) and held-out SPM triples (4 per triple, N = 3, suffix `_3`); `val_loss` over both.",
        tables="docs/methods/chartsias.md",
    )
    log(f"[{method}] wrote {out} ({out.stat().st_size} bytes) after {wall:.0f} s")
    return {"weights": str(out), "history": history, "final": final, "train_seconds": wall, "data": data.summary}


def evaluate_triples(data_dir, methods: Sequence[str], every: int = 2) -> dict[str, dict[str, dict[str, float]]]:
    """N = 3 quality on the held-out SPM slab: {triple: {method: {column: mean}}}, slice mode, 8-bit fused.

    Every method is given the triple's modalities (only methods that use them read them)."""
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
                fused = fuse_arrays(list(src8 / 255.0), name, modalities=triple_modalities(triple))
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
        Path(args.json).write_text(json.dumps({"per_triple": results, "mean": mean}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
