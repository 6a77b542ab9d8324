"""The trainer: seeded, deterministic, with checkpoints, resume, progress and validation metrics.

``train(method, data_dir, out=None, epochs=None, seed=0, ...)`` (options: :class:`TrainOptions`) trains the
recipe ``method`` (see :mod:`.recipes`) and writes a compact float16 weight file that :mod:`MedFusionLib.fusion.methods` loads by name.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import pickle
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.inference.modality_codes import modality_codes
from MedFusionLib.networks import build_network
from MedFusionLib.training import data as D
from MedFusionLib.training.losses import FusionLoss, ReconstructionLoss
from MedFusionLib.training.recipes import RECIPES, Recipe

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
VAL_PAIRS_PER_MODALITY = 8  # full-size held-out pairs fused for the validation metrics at each epoch
VAL_METRICS = ("QABF", "SSIM", "VIF", "MI", "SD")
VAL_CHUNK = 4  # validation images per forward pass
VOLUME_VAL_SLICES, VOLUME_VAL_STEP = 24, 8  # select-volume slices whose saturation share is validated
MODALITY_DROPOUT = 0.1  # share of a modality-aware network's training inputs given the "not known" code


def get_recipe(method: str) -> Recipe:
    try:
        return RECIPES[method]
    except KeyError:
        raise MedFusionError(f"no training recipe for {method!r} (trainable: {', '.join(RECIPES)})") from None


def resolve_recipe(
    method: str, epochs=None, steps_per_epoch=None, batch=None, lr=None, config_overrides=None, loss_overrides=None
) -> Recipe:
    """``method``'s recipe with the command-line overrides applied (config and loss arguments merged)."""
    recipe = get_recipe(method)
    overrides = {
        k: v
        for k, v in dict(epochs=epochs, steps_per_epoch=steps_per_epoch, batch=batch, lr=lr).items()
        if v is not None
    }
    if config_overrides:
        overrides["config"] = {**recipe.config, **config_overrides}
    if loss_overrides:
        overrides["loss_args"] = {**recipe.loss_args, **loss_overrides}
    return replace(recipe, **overrides)


TRAIN_SPLITS = {"train": "val", "fit": "select"}  # training split -> the split its validation metrics come from


@dataclass
class TrainOptions:
    """Options shared by every training loop: the keyword arguments of :func:`train` and ``medfusion train``.

    ``train_split="fit"`` trains on the training cases less the model-selection cases and validates on those
    ("select"); that is how recipes are compared, so the held-out "val" cases stay out of every choice.
    """

    out: Path | None = None
    epochs: int | None = None
    seed: int = 0
    split_seed: int = D.SPLIT_SEED
    train_split: str = "train"
    steps_per_epoch: int | None = None
    batch: int | None = None
    lr: float | None = None
    checkpoint_dir: Path | None = None
    resume: Path | None = None
    threads: int | None = 1
    validate_every: int = 5
    config_overrides: dict | None = None
    loss_overrides: dict | None = None
    progress: Callable[[float, str], None] | None = None
    quiet: bool = False
    command: str = ""
    install: bool = False  # write into the installed package's weights (what the package ships)

    def __post_init__(self) -> None:
        if self.train_split not in TRAIN_SPLITS:
            raise MedFusionError(f"train_split must be one of {', '.join(TRAIN_SPLITS)}, not {self.train_split!r}")

    def recipe(self, method: str) -> Recipe:
        return resolve_recipe(
            method, self.epochs, self.steps_per_epoch, self.batch, self.lr, self.config_overrides, self.loss_overrides
        )

    def weights_path(self, method: str) -> Path:
        """``out``, else the package's file with ``install``, else ``out/weights/METHOD.pt`` here: one short run
        must never change the method for everyone using the environment, so the package needs ``install``."""
        if self.install:
            return Path(self.out) if self.out else WEIGHTS_DIR / f"{method}.pt"
        path = Path(self.out) if self.out else Path("out") / "weights" / f"{method}.pt"
        if path.resolve().parent == WEIGHTS_DIR.resolve():
            raise MedFusionError(
                f"{path}: inside the installed package's weights; pass install=True (--install) to replace them"
            )
        return path

    def checkpoint_path(self, method: str) -> Path:
        return Path(self.checkpoint_dir) if self.checkpoint_dir else Path("out") / "training" / method

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)


def cosine(total_steps: int) -> Callable[[int], float]:
    """Cosine learning-rate decay to zero over ``total_steps`` (a LambdaLR factor)."""
    return lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))


def save_checkpoint(checkpoint_dir: Path, state: dict) -> None:
    """Write ``last.pt`` atomically, so an interrupted epoch never leaves a broken checkpoint."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    torch.save(state, checkpoint_dir / "last.pt.tmp")
    os.replace(checkpoint_dir / "last.pt.tmp", checkpoint_dir / "last.pt")


def resume_from(opts: TrainOptions, recipe: Recipe, states: dict[str, Any], rng: np.random.Generator) -> dict:
    """Load ``opts.resume`` into ``states`` (checkpoint key -> object with ``load_state_dict``) and ``rng``.

    Returns the checkpoint (its ``history``, ``epoch``, ``elapsed`` and any loop-specific keys).
    """
    try:  # tensors and plain containers only: a checkpoint is data, never code to run
        ckpt = torch.load(opts.resume, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MedFusionError(f"{opts.resume}: not a checkpoint written by medfusion train ({first})") from None
    if not isinstance(ckpt, dict) or "recipe" not in ckpt:
        raise MedFusionError(f"{opts.resume}: not a checkpoint written by medfusion train")
    if ckpt["recipe"] != recipe.name:
        raise MedFusionError(f"{opts.resume}: checkpoint of {ckpt['recipe']!r}, not {recipe.name!r}")
    for key, obj in states.items():
        obj.load_state_dict(ckpt[key])
    rng.bit_generator.state = ckpt["rng"]
    torch.set_rng_state(ckpt["torch_rng"])
    ckpt.setdefault("elapsed", 0.0)
    return ckpt


class LoopStart(NamedTuple):
    """What a one-network training loop starts from: its optimiser and schedule, random state and history."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    rng: np.random.Generator
    states: dict[str, Any]  # checkpoint key -> object with ``state_dict`` (what finish_epoch saves)
    history: list[dict]
    start_epoch: int
    elapsed_before: float


def start_loop(net: torch.nn.Module, recipe: Recipe, opts: TrainOptions) -> LoopStart:
    """Adam at the recipe's rate with cosine decay over all its steps, seeded randomness, and (with
    ``opts.resume``) everything restored from the checkpoint: the start every one-network loop shares."""
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine(recipe.epochs * recipe.steps_per_epoch))
    rng = np.random.default_rng(opts.seed)
    states = {"model": net, "optimizer": opt, "scheduler": sched}
    history: list[dict] = []
    start_epoch, elapsed_before = 0, 0.0
    if opts.resume:
        ckpt = resume_from(opts, recipe, states, rng)
        history, start_epoch, elapsed_before = ckpt["history"], ckpt["epoch"], ckpt["elapsed"]
    return LoopStart(opt, sched, rng, states, history, start_epoch, elapsed_before)


def finish_epoch(
    method: str,
    recipe: Recipe,
    opts: TrainOptions,
    checkpoint_dir: Path,
    epoch: int,
    row: dict,
    history: list[dict],
    states: dict[str, Any],
    rng: np.random.Generator,
    **extra: Any,
) -> None:
    """The end of an epoch in every training loop: record and log ``row``, write the checkpoint that
    :func:`resume_from` reads back (``states``: checkpoint key -> object with ``state_dict``; ``extra``: more
    loop-specific keys), then report progress (after the checkpoint: an interrupt raised there loses nothing)."""
    history.append(row)
    opts.log(f"[{method}] " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    checkpoint = {"recipe": recipe.name, "epoch": epoch + 1, **extra}
    checkpoint.update({key: obj.state_dict() for key, obj in states.items()})
    checkpoint.update(
        rng=rng.bit_generator.state, torch_rng=torch.get_rng_state(), history=history, elapsed=row["elapsed_s"]
    )
    save_checkpoint(checkpoint_dir, checkpoint)
    if opts.progress:
        opts.progress((epoch + 1) / recipe.epochs, f"epoch {epoch + 1}/{recipe.epochs} loss {row['loss']:.4f}")


def training_meta(
    method: str, recipe: Recipe, opts: TrainOptions, summary: str, wall: float, history: list[dict]
) -> dict:
    """What is stored in the weight file and shown in the model card about how it was trained."""
    final = {k: v for k, v in (history[-1] if history else {}).items() if k not in ("epoch", "lr", "elapsed_s")}
    return {
        "method": method,
        "recipe": dict(recipe.__dict__),
        "seed": opts.seed,
        "split_seed": opts.split_seed,
        "train_split": opts.train_split,
        "data": summary,
        "train_seconds": round(wall, 1),
        "torch_threads": torch.get_num_threads(),
        "final": final,
        "command": opts.command,
    }


def validation_heading(meta: dict) -> str:
    if meta.get("train_split", "train") == "train":
        return "## Validation (held-out cases; the trainer never uses them for early stopping or checkpoint selection)"
    return "## Validation (model-selection cases, part of the training cases)"


def validation_table(history: list[dict]) -> list[str]:
    """Markdown rows of the epochs that were validated (model cards)."""
    rows = [h for h in history if "val_loss" in h]
    if not rows:
        return []
    keys = [k for k in rows[-1] if k not in ("epoch", "lr", "elapsed_s")]
    lines = ["| epoch | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += [f"| {h['epoch']} | " + " | ".join(f"{h.get(k, float('nan')):.4g}" for k in keys) + " |" for h in rows]
    return lines


def seed_everything(seed: int, threads: int | None) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)


def start_run(
    method: str, data_dir, opts: TrainOptions | None, options: dict, data_given: bool = False
) -> tuple[TrainOptions, Recipe, Path, Path, Path]:
    """The common start of every training loop: the options, the recipe, a one-line error for a missing data
    folder (unless the caller brings its own data), seeded randomness; returns ``(opts, recipe, data_dir,
    weights path, checkpoint folder)``."""
    opts = opts or TrainOptions(**options)
    recipe = opts.recipe(method)
    data_dir = Path(data_dir)
    if not data_given and not data_dir.is_dir():
        raise MedFusionError(f"{data_dir}: no such data folder")
    seed_everything(opts.seed, opts.threads)
    return opts, recipe, data_dir, opts.weights_path(method), opts.checkpoint_path(method)


def _metrics_fn():
    try:
        from MedFusionLib.metrics import compute_metrics  # written by the metrics work; optional here
    except Exception:  # pragma: no cover - absent during early development
        return None
    return compute_metrics


class _Data:
    """Training batches and validation material for one recipe."""

    def __init__(self, recipe: Recipe, data_dir: Path, split_seed: int, train_split: str = "train") -> None:
        self.recipe = recipe
        self.modality_aware = bool(recipe.config.get("modality_classes", 0))
        self.train_modalities: list[tuple[str, ...]] = []
        self.volume_modalities: list[tuple[str, str]] = []
        self.val_modalities: list[tuple[str, ...]] = []
        self.val_volume_modalities: list[tuple[str, str]] = []
        self.val_pairs: np.ndarray | None = None
        self.val_volumes: list[np.ndarray] = []
        self.volume_slices: list[np.ndarray] = []
        self.val_volume_slices: list[np.ndarray] = []
        if recipe.data == "pairs+volumes":
            self.volume_slices, self.volume_modalities = D.load_labelled_volume_slices(data_dir, "select")
            axial, axial_modalities = D.load_labelled_volume_slices(data_dir, "select", step=VOLUME_VAL_STEP)
            every = max(1, len(axial) // VOLUME_VAL_SLICES)
            self.val_volume_slices, self.val_volume_modalities = axial[::every], axial_modalities[::every]
        if recipe.data in ("pairs", "singles", "pairs+volumes"):
            train = D.load_pairs(data_dir, train_split, split_seed)
            val = D.load_pairs(data_dir, TRAIN_SPLITS[train_split], split_seed)
            self.train = train.images.astype(np.float32) / 255.0
            if recipe.data == "singles":
                flat = self.train.reshape(-1, 1, *self.train.shape[2:])
                self.train = flat[flat.max(axis=(1, 2, 3)) > 0.05]
            else:
                self.train_modalities = [D.PAIR_MODALITIES[pair] for pair in train.pair]
            picks = []
            for pair in D.PAIRS:
                idx = [i for i, p in enumerate(val.pair) if p == pair]
                if idx:
                    picks += list(
                        np.array(idx)[np.linspace(0, len(idx) - 1, min(VAL_PAIRS_PER_MODALITY, len(idx))).astype(int)]
                    )
            self.val_pairs = val.images[picks].astype(np.float32) / 255.0
            self.val_modalities = [D.PAIR_MODALITIES[val.pair[i]] for i in picks]
            held = sorted({D.case_id(i) for i in val.ids}, key=int)
            role = "held-out" if train_split == "train" else "model-selection"
            self.summary = f"{role} cases {', '.join(held)}; {len(train.ids)} {train_split} pairs ({len(set(map(D.case_id, train.ids)))} cases), {len(val.ids)} {role} pairs ({len(held)} cases; {len(picks)} used for validation)"
            if self.volume_slices:
                self.summary += f"; {len(self.volume_slices)} slices of the select real volume pairs ({', '.join(p.name for p in D.VOLUME_SELECT)}; every 2nd slice along each axis), {recipe.volume_share:.0%} of each batch"
        elif recipe.data == "patches3d":
            self.train_volumes = D.load_volume_pairs(data_dir, "train")
            self.val_volumes = D.load_volume_pairs(data_dir, "val")
            self.summary = f"{len(self.train_volumes)} train volume pairs (spm), {len(self.val_volumes)} validation volume pairs (sirf: MR T1/T2, PET/mu-map)"
        else:  # pragma: no cover
            raise ValueError(recipe.data)

    def batch(self, rng: np.random.Generator) -> torch.Tensor:
        """A training batch (n_inputs, batch, 1, *spatial)."""
        return self.labelled_batch(rng)[0]

    def labelled_batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A training batch and, for a modality-aware network, its inputs' codes (n_inputs, batch, classes)."""
        r = self.recipe
        labels: list[tuple[str, ...] | None] = []
        if r.data == "patches3d":
            items = [
                D.random_patch(self.train_volumes[rng.integers(len(self.train_volumes))], rng, r.crop)
                for _ in range(r.batch)
            ]
        else:
            items = []
            for _ in range(r.batch):  # pick and augment in turn: the random stream of the shipped recipes
                pair, modalities = self._pick(rng)
                items.append(D.augment_pair(pair, rng, r.crop, r.gamma_range))
                labels.append(modalities)
        x = torch.from_numpy(np.stack(items, axis=1))  # (n_inputs, batch, *spatial)
        return x.unsqueeze(2), self._codes(labels, rng) if self.modality_aware else None

    @staticmethod
    def _codes(labels: Sequence[tuple[str, ...] | None], rng: np.random.Generator) -> torch.Tensor:
        """Codes (n_inputs, batch, classes) of the labels, ``MODALITY_DROPOUT`` of them replaced by "not known"."""
        codes = np.stack([modality_codes(label) for label in labels], axis=1)
        codes[rng.random(codes.shape[:2]) < MODALITY_DROPOUT] = 0.0
        return torch.from_numpy(codes)

    def _pick(self, rng: np.random.Generator) -> tuple[np.ndarray, tuple[str, ...] | None]:
        """One 2-D training pair and its modalities: a slice of a select real volume (``volume_share`` of the time)
        or a Harvard pair; with volume slices in the mix, both are padded to the crop so that every crop of a batch
        has one size."""
        if not self.volume_slices:
            index = rng.integers(len(self.train))
            return self.train[index], self._train_modalities(index)
        if rng.random() < self.recipe.volume_share:
            index = rng.integers(len(self.volume_slices))
            return D.pad_to(self.volume_slices[index], self.recipe.crop), self.volume_modalities[index]
        index = rng.integers(len(self.train))
        pair = self.train[index]
        if self.recipe.volume_like and rng.random() < self.recipe.volume_like:
            pair = D.volume_like(pair, rng)
        return D.pad_to(pair, self.recipe.crop), self._train_modalities(index)

    def _train_modalities(self, index: int) -> tuple[str, ...] | None:
        return self.train_modalities[index] if self.train_modalities else None


def apply_network(
    net, x: torch.Tensor, modalities: Sequence[Sequence[str]] | torch.Tensor | None = None
) -> torch.Tensor:
    """``net(x)``, with the inputs' codes for a modality-aware network (``modalities``: the codes, or a list of
    each image's modality names, or None for a network that takes none)."""
    if not getattr(net, "modality_classes", 0):
        return net(x)
    if modalities is None:
        raise ValueError("a modality-aware network needs the inputs' modalities")
    if not isinstance(modalities, torch.Tensor):
        modalities = torch.from_numpy(np.stack([modality_codes(m) for m in modalities], axis=1))
    return net(x, modalities)


@torch.no_grad()
def volume_saturation(net, slices: list[np.ndarray], modalities: Sequence[tuple[str, str]] = ()) -> dict[str, float]:
    """Saturation share (foreground at >= 250 of 255) of the fused select-volume slices, and of their pixel max."""
    labels: list[list[tuple[str, str]] | None] = [[m] for m in modalities] or [None] * len(slices)
    fused = [
        apply_network(net, torch.from_numpy(s).unsqueeze(1).unsqueeze(1), label).clamp(0, 1)[0, 0].numpy()
        for s, label in zip(slices, labels)
    ]
    return {
        "SAT": float(np.mean([D.saturation_share(f, s) for f, s in zip(fused, slices)])),
        "SAT_max": float(np.mean([D.saturation_share(s.max(axis=0), s) for s in slices])),
    }


def _step_loss(net, loss_fn, recipe: Recipe, x: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
    if recipe.loss == "reconstruction":
        x = x[0]
        return loss_fn(net.autoencode(x), x)
    return loss_fn(apply_network(net, x, codes), x)


@torch.no_grad()
def validate(net, recipe: Recipe, data: _Data, loss_fn) -> dict[str, float]:
    """Held-out loss and fusion metrics (via MedFusionLib.metrics when present) on full-size images."""
    net.eval()
    out: dict[str, float] = {}
    if data.val_pairs is not None:
        x = torch.from_numpy(data.val_pairs).permute(1, 0, 2, 3).unsqueeze(2)  # (2, n, 1, H, W)
        if recipe.loss == "reconstruction":
            singles = x.flatten(0, 1)
            out["val_loss"] = float(loss_fn(net.autoencode(singles), singles))
        # a few images per forward pass: wide full-resolution networks (ddcgan: 240 maps) stay within memory
        labels = getattr(data, "val_modalities", None) or None
        chunks = range(0, x.shape[1], VAL_CHUNK)
        fused = torch.cat(
            [apply_network(net, x[:, i : i + VAL_CHUNK], labels and labels[i : i + VAL_CHUNK]) for i in chunks], dim=0
        ).clamp(0, 1)
        if recipe.loss == "fusion":
            out["val_loss"] = float(loss_fn(fused, x))
        compute = _metrics_fn()
        if compute is not None:
            rows = []
            for i in range(fused.shape[0]):
                srcs = [data.val_pairs[i, 0] * 255.0, data.val_pairs[i, 1] * 255.0]
                rows.append(compute(srcs, fused[i, 0].numpy() * 255.0, keys=list(VAL_METRICS)))
            for key in VAL_METRICS:
                out[key] = float(np.mean([r[key] for r in rows]))
        volume_slices = getattr(data, "val_volume_slices", None)  # the other loops' data have none
        if volume_slices:
            out.update(volume_saturation(net, volume_slices, getattr(data, "val_volume_modalities", ())))
    else:
        from MedFusionLib.fusion.consistency import through_plane_consistency

        losses, cons = [], []
        for vol in data.val_volumes:
            x = torch.from_numpy(vol).unsqueeze(1).unsqueeze(1)  # (2, 1, 1, D, H, W)
            fused = net(x).clamp(0, 1)
            losses.append(float(loss_fn(fused, x)))
            cons.append(through_plane_consistency(fused[0, 0].numpy(), list(vol))["ratio"])
        out["val_loss"] = float(np.mean(losses))
        out["through_plane_ratio"] = float(np.mean(cons))
    net.train()
    return out


def export_weights(net, recipe: Recipe, path: Path, meta: dict) -> Path:
    """Write the compact weight file: float16 state_dict + network name + config + metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).clone() for k, v in net.state_dict().items()}
    payload = {
        "network": recipe.network,
        "config": dict(recipe.config),
        "state_dict": state,
        "meta": json.dumps(meta, sort_keys=True),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


LOSS_TEXT = {
    "fusion": "unsupervised fusion loss: w_ssim (1 - mean SSIM(F, S_i)) + w_grad L1(|grad F|, max_i |grad S_i|) + w_int L1(F, max_i S_i)"
    " [+ w_edge (1 - Q(F; S_1..S_n)), Q the differentiable Xydeas-Petrovic edge preservation (QABF) of losses.py, when w_edge > 0]"
    " [+ w_over mean(relu(F - max_i S_i)), a hinge on brightness above the brightest source, when w_over > 0]"
    " [+ w_vif (1 - mean_i VIF(S_i -> F)), the differentiable pixel-domain VIF of losses.py, when w_vif > 0; with"
    " vif_pool batch, VIF's numerators and denominators summed over the batch before their ratio]",
    "reconstruction": "autoencoder reconstruction: L1(X', X) + w_ssim (1 - SSIM(X', X))",
}
DATA_TEXT = {
    "pairs": "Harvard atlas slice pairs (CT-MRI, PET-MRI, SPECT-MRI; PET/SPECT as rounded luma), random crops",
    "pairs+volumes": "Harvard atlas slice pairs (CT-MRI, PET-MRI, SPECT-MRI; PET/SPECT as rounded luma) and slices along all three axes of the select real volume pairs (SPM templates MR T1/T2/PD with PET and SPECT, each volume on 0..1 by the project's normalisation, core/normalization.py), zero-padded to the crop, random crops",
    "singles": "single-modality slices of the Harvard training pairs (each image of each pair, empty ones dropped), random crops",
    "patches3d": "random 3-D patches of aligned volume pairs (SPM templates T1/T2/PD with PET/SPECT and T1-T2; each volume scaled to 0..1 by its 99.5th foreground percentile); no fusion ground truth: self-supervised by the loss",
}


def model_card_text(
    net, recipe: Recipe, meta: dict, history: list[dict], path: Path, rows: list[tuple], footer: str, note: str = ""
) -> str:
    """Markdown model card: the loop-specific ``rows`` ((item, value) pairs), then what every loop shares."""
    n_params = sum(p.numel() for p in net.parameters())
    default_command = f"medfusion train {recipe.name} --data ../shared/data"
    if meta.get("train_split", "train") != "train":
        default_command += f" --train-split {meta['train_split']}"
    lines = [
        f"# Model card: `{path.name}` ({recipe.name})",
        "",
        f"{recipe.description}. Network `{recipe.network}` ({n_params:,} parameters), config `{json.dumps(recipe.config)}`; "
        f"stored as a float16 state_dict ({path.stat().st_size:,} bytes), loaded offline by name.",
        "",
        "| item | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        f"| schedule | {recipe.epochs} epochs x {recipe.steps_per_epoch} steps, batch {recipe.batch}, crop {recipe.crop}, Adam lr {recipe.lr} with cosine decay, seed {meta['seed']} |",
        f"| determinism | seeded numpy/torch, `torch.use_deterministic_algorithms(True)`, {meta['torch_threads']} torch thread(s) |",
        f"| CPU training time | {meta['train_seconds']:.0f} s of training ({meta['torch_threads']} thread(s), shared 2-core machine) |",
        f"| reproduce | `{meta['command'] or default_command}` (from the repository root) |",
        "",
        validation_heading(meta),
        "",
        *validation_table(history),
        "",
        footer,
        "",
    ]
    if note:
        lines += [note, ""]
    return "\n".join(lines)


def _volume_like_text(recipe: Recipe) -> str:
    if not recipe.volume_like:
        return ""
    return (
        f"; before the crop, {recipe.volume_like:.0%} of the Harvard pairs made to look like real volume slices"
        " (per source: re-normalised by a random 97-99.9th foreground percentile, a Gaussian blur of sigma"
        " 0.5-1.5 with probability 1/3, a background offset up to 0.04 with probability 1/3; data.volume_like)"
    )


def model_card(net, recipe: Recipe, meta: dict, history: list[dict], path: Path) -> str:
    """Markdown model card of the recipes trained by :func:`train`."""
    if recipe.data == "patches3d":
        split_text = "by case (the volume's folder: spm trains, sirf validates)"
        aug_text = f"random {recipe.crop}^3 patch containing foreground, flips along the three axes"
    else:
        split_text = f"by case id (leading digits of the file id minus the last three), seed {meta['split_seed']}"
        aug_text = f"random {recipe.crop}x{recipe.crop} crop containing foreground, flips, 90-degree rotations"
    rows = [
        ("data", DATA_TEXT[recipe.data]),
        ("split", f"{split_text}: {meta['data']}"),
        ("loss", f"{LOSS_TEXT[recipe.loss]}; weights `{json.dumps(recipe.loss_args)}`"),
        (
            "augmentation",
            f"{aug_text}, per-source gain 0.8-1.2 and gamma {recipe.gamma_range[0]:g}-{recipe.gamma_range[1]:g}"
            + _volume_like_text(recipe),
        ),
    ]
    footer = (
        "Metrics: `MedFusionLib.metrics` definitions (MI in bits, SSIM summed over the two sources with data range 255) on "
        "full-size validation pairs (up to 8 per modality pair). The full quality table is in docs/deep-fusion.md."
    )
    return model_card_text(net, recipe, meta, history, path, rows, footer)


# Hook (deep fusion part 2): recipes trained by a loop other than the one in train() below (adversarial,
# multi-input) register that loop here by recipe name; train() hands them the method, the data folder and the
# TrainOptions.
def train(method: str, data_dir, out=None, **options) -> dict:
    """Train ``method``'s recipe on ``data_dir`` (the folder holding ``harvard/`` and ``volumes/``).

    ``options`` are the fields of :class:`TrainOptions`. Writes the float16 weights to ``out`` (default
    ``MedFusionLib/weights/<method>.pt``) and a checkpoint after each epoch to ``checkpoint_dir`` (default
    ``out/training/<method>``); ``resume`` continues from a checkpoint (same recipe). Returns a dict with the
    history, the final validation metrics and the wall time.
    """
    opts, recipe, data_dir, out, checkpoint_dir = start_run(method, data_dir, TrainOptions(out=out, **options), {})

    started = time.perf_counter()
    data = _Data(recipe, data_dir, opts.split_seed, opts.train_split)
    net = build_network(recipe.network, recipe.config)
    opt, sched, rng, states, history, start_epoch, elapsed_before = start_loop(net, recipe, opts)
    loss_class = FusionLoss if recipe.loss == "fusion" else ReconstructionLoss
    unknown = sorted(set(recipe.loss_args) - set(inspect.signature(loss_class).parameters))
    if unknown:
        known = sorted(recipe.config) + sorted(inspect.signature(loss_class).parameters)
        raise MedFusionError(f"{method}: unknown recipe override {', '.join(unknown)} (known: {', '.join(known)})")
    loss_fn = loss_class(**recipe.loss_args)
    log = opts.log
    log(
        f"[{method}] {data.summary}; {recipe.epochs} epochs x {recipe.steps_per_epoch} steps, batch {recipe.batch}, crop {recipe.crop}"
    )

    try:
        from tqdm import tqdm
    except Exception:  # pragma: no cover
        tqdm = None
    net.train()
    t0 = time.perf_counter()
    for epoch in range(start_epoch, recipe.epochs):
        losses = []
        steps = range(recipe.steps_per_epoch)
        bar = (
            tqdm(
                steps,
                desc=f"epoch {epoch + 1}/{recipe.epochs}",
                leave=False,
                disable=opts.quiet or not sys.stderr.isatty(),
            )
            if tqdm
            else steps
        )
        for _ in bar:
            x, codes = data.labelled_batch(rng)
            loss = _step_loss(net, loss_fn, recipe, x, codes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if tqdm and not opts.quiet and not isinstance(bar, range):
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": sched.get_last_lr()[0]}
        if (epoch + 1) % opts.validate_every == 0 or epoch + 1 == recipe.epochs:
            row.update(validate(net, recipe, data, loss_fn))
        row["elapsed_s"] = elapsed_before + time.perf_counter() - t0
        finish_epoch(method, recipe, opts, checkpoint_dir, epoch, row, history, states, rng)

    wall = elapsed_before + time.perf_counter() - t0
    meta = training_meta(method, recipe, opts, data.summary, wall, history)
    final = meta["final"]
    export_weights(net, recipe, out, meta)
    out.with_suffix(".md").write_text(model_card(net, recipe, meta, history, out), encoding="utf-8")
    log(
        f"[{method}] wrote {out} ({out.stat().st_size} bytes) after {wall:.0f} s (+{time.perf_counter() - started - wall:.0f} s loading)"
    )
    return {"weights": str(out), "history": history, "final": final, "train_seconds": wall, "data": data.summary}
