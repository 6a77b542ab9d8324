"""Adversarial training with one discriminator per source (``medfusion train ddcgan --data ../shared/data``).

Every recipe whose ``loss`` is ``"adversarial"`` trains here. A generator ``G`` (the recipe's network) fuses a
Harvard pair (S_1, S_2); discriminator ``D_k`` (``networks/ddcgan.py``: :class:`DDcGANDiscriminator`, sized to
the training crop) learns to tell ``S_k`` from ``G(S_1, S_2)``; the generator minimises

    content(F; S_1, S_2) + adv_weight * ramp(step) * sum_k g_adv(D_k(F))

The recipe's ``loss_args`` choose:

* ``content``: ``"ddcgan"`` (``losses.DDcGANContentLoss``, the paper's: intensity of S_1 in the squared norm, texture
  of S_2 in the L1 norm of the gradient difference; arguments ``w_int``, ``eta``) or ``"fusion"``
  (``losses.FusionLoss``: SSIM + gradient + intensity; ``w_ssim``, ``w_grad``, ``w_int``, ...);
* ``gan_loss``: ``"log"`` (the paper's: discriminators minimise ``-log D_k(S_k) - log(1 - D_k(F))``, the generator
  ``-log D_k(F)``, the non-saturating form of the authors' release; discriminator outputs are probabilities) or
  ``"lsgan"`` (least squares with the real label ``real_label``: ``(D_k(S_k) - real)^2 + D_k(F)^2`` and
  ``(D_k(F) - real)^2``);
* ``adv_weight`` (0: content loss only, the ablation; the discriminators are then not trained at all, which
  leaves the generator's training exactly that of the content loss alone), ``warmup_steps`` (the adversarial
  term is ramped in linearly), ``d_lr_ratio`` (discriminator learning rate / generator's), ``d_channels``,
  ``d_clip`` (discriminator weights clipped to +-d_clip after each step, as the release's +-8; 0: off),
  ``g_clip`` (generator gradient norm clip; 0: off).

Measures that keep this stable on a CPU with short runs: the content loss dominates and the adversarial term is
ramped in (the discriminators train from step 0, so they are informative when it arrives); Adam with beta1 = 0.5,
discriminators at a lower learning rate (two-time-scale); weight clipping of the discriminators and gradient
clipping of the generator; seeded, deterministic kernels, single-threaded by default.

The loop mirrors the trainer (same data, split, augmentation, validation metrics, checkpoints each epoch,
``--resume``) and is reached through ``MedFusionLib.training.train``. :func:`write_card` writes the model cards
of the custom loops.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.networks import build_network
from MedFusionLib.networks.ddcgan import DDcGANDiscriminator
from MedFusionLib.training import trainer as T
from MedFusionLib.training.losses import DDcGANContentLoss, FusionLoss
from MedFusionLib.training.recipes import RECIPES, Recipe
from MedFusionLib.training.trainer import cosine

ADVERSARIAL = tuple(name for name, r in RECIPES.items() if r.loss == "adversarial")  # trained by this loop
CONTENT_KEYS = {
    "ddcgan": ("w_int", "eta"),
    "fusion": ("w_ssim", "w_grad", "w_int", "ssim_window", "w_edge", "grad_gain", "w_vif"),
}
EPS = 1e-8


def write_card(
    net,
    recipe: Recipe,
    meta: dict,
    history: list[dict],
    path: Path,
    rows: list[tuple],
    note: str = "",
    tables: str = "docs/methods/README.md",
) -> None:
    """Markdown model card beside ``path``: ``rows`` are (item, value) pairs specific to the loop; ``tables``
    names the document holding the method's quality tables."""
    footer = (
        "Metrics: `MedFusionLib.metrics` definitions (MI in bits, SSIM summed over the sources with data range 255) on "
        f"full-size validation images. The quality tables are in {tables}."
    )
    path.with_suffix(".md").write_text(
        T.model_card_text(net, recipe, meta, history, path, rows, footer, note), encoding="utf-8"
    )


def content_loss(args: dict) -> torch.nn.Module:
    """The content loss named by ``args["content"]`` (default ``"ddcgan"``) with its arguments from ``args``."""
    kind = args.get("content", "ddcgan")
    if kind not in CONTENT_KEYS:
        raise MedFusionError(f"unknown content loss {kind!r} ({', '.join(CONTENT_KEYS)})")
    cls = DDcGANContentLoss if kind == "ddcgan" else FusionLoss
    return cls(**{k: v for k, v in args.items() if k in CONTENT_KEYS[kind]})


def gan_losses(kind: str, real_label: float = 1.0):
    """(discriminator loss(real scores, fake scores), generator loss(fake scores)) of ``kind``: log or lsgan."""
    if kind == "log":
        return (
            lambda real, fake: -(torch.log(real + EPS).mean() + torch.log(1 - fake + EPS).mean()),
            lambda fake: -torch.log(fake + EPS).mean(),
        )
    if kind == "lsgan":
        return (
            lambda real, fake: ((real - real_label) ** 2).mean() + (fake**2).mean(),
            lambda fake: ((fake - real_label) ** 2).mean(),
        )
    raise MedFusionError(f"unknown gan_loss {kind!r} (log or lsgan)")


@dataclass
class _Adversaries:
    """The generator, the two discriminators, their optimisers and schedules, and the recipe's loss settings."""

    gen: torch.nn.Module
    discs: torch.nn.ModuleList
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LambdaLR
    sched_d: torch.optim.lr_scheduler.LambdaLR
    content: torch.nn.Module
    d_loss_fn: Callable
    g_adv_fn: Callable
    adv_weight: float
    warmup: int
    d_clip: float
    g_clip: float

    def states(self) -> dict[str, Any]:
        """What a checkpoint saves and ``--resume`` restores."""
        return {
            "model": self.gen,
            "discriminators": self.discs,
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
            "sched_g": self.sched_g,
            "sched_d": self.sched_d,
        }


def _build(recipe: Recipe, args: dict) -> _Adversaries:
    """The networks, optimisers (Adam, beta1 0.5, two time scales) and cosine schedules of ``recipe``."""
    gen = build_network(recipe.network, recipe.config)
    discs = torch.nn.ModuleList(DDcGANDiscriminator(recipe.crop, int(args.get("d_channels", 16))) for _ in range(2))
    opt_g = torch.optim.Adam(gen.parameters(), lr=recipe.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discs.parameters(), lr=recipe.lr * float(args.get("d_lr_ratio", 0.5)), betas=(0.5, 0.999))
    total = recipe.epochs * recipe.steps_per_epoch
    d_loss_fn, g_adv_fn = gan_losses(str(args.get("gan_loss", "log")), float(args.get("real_label", 1.0)))
    return _Adversaries(
        gen=gen,
        discs=discs,
        opt_g=opt_g,
        opt_d=opt_d,
        sched_g=torch.optim.lr_scheduler.LambdaLR(opt_g, cosine(total)),
        sched_d=torch.optim.lr_scheduler.LambdaLR(opt_d, cosine(total)),
        content=content_loss(args),
        d_loss_fn=d_loss_fn,
        g_adv_fn=g_adv_fn,
        adv_weight=float(args.get("adv_weight", 0.0)),
        warmup=int(args.get("warmup_steps", 0)),
        d_clip=float(args.get("d_clip", 0.0)),
        g_clip=float(args.get("g_clip", 0.0)),
    )


def _discriminator_step(a: _Adversaries, x: torch.Tensor, fused: torch.Tensor, sums: dict[str, list[float]]) -> None:
    """D_k learns to tell source k (real) from the fused image (fake); weights clipped after the step."""
    real_scores = [d(x[k]) for k, d in enumerate(a.discs)]
    fake_scores = [d(fused.detach()) for d in a.discs]
    loss_d = sum(a.d_loss_fn(r, f) for r, f in zip(real_scores, fake_scores))
    a.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    a.opt_d.step()
    if a.d_clip > 0:
        with torch.no_grad():
            for p in a.discs.parameters():
                p.clamp_(-a.d_clip, a.d_clip)
    sums["loss_d"].append(float(loss_d.detach()))
    sums["d_real"].append(float(torch.cat(real_scores).detach().mean()))
    sums["d_fake"].append(float(torch.cat(fake_scores).detach().mean()))
    a.sched_d.step()


def _generator_step(
    a: _Adversaries, x: torch.Tensor, fused: torch.Tensor, step: int, sums: dict[str, list[float]]
) -> None:
    """The generator minimises content + a ramped adversarial term against both discriminators."""
    ramp = min(1.0, step / a.warmup) if a.warmup > 0 else 1.0
    loss_c = a.content(fused, x)
    loss_g = loss_c
    if a.adv_weight > 0:
        adv = sum(a.g_adv_fn(d(fused)) for d in a.discs)
        loss_g = loss_c + a.adv_weight * ramp * adv
        sums["adv_g"].append(float(adv.detach()))
    a.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    if a.g_clip > 0:
        torch.nn.utils.clip_grad_norm_(a.gen.parameters(), a.g_clip)
    a.opt_g.step()
    a.sched_g.step()
    sums["loss"].append(float(loss_g.detach()))
    sums["content"].append(float(loss_c.detach()))


def _train_epoch(a: _Adversaries, data, rng: np.random.Generator, steps: int, step: int) -> tuple[dict, int]:
    """One epoch of alternating steps; (mean of each logged loss, the global step after it)."""
    sums: dict[str, list[float]] = {k: [] for k in ("loss", "content", "adv_g", "loss_d", "d_real", "d_fake")}
    for _ in range(steps):
        x = data.batch(rng)  # (2, batch, 1, H, W)
        fused = a.gen(x)
        if a.adv_weight > 0:
            _discriminator_step(a, x, fused, sums)
        _generator_step(a, x, fused, step, sums)
        step += 1
    return {k: float(np.mean(v)) for k, v in sums.items() if v}, step


def train_adversarial(method: str, data_dir, opts: T.TrainOptions | None = None, data=None, **options) -> dict:
    """Train the adversarial recipe ``method``; same arguments and result as :func:`trainer.train`.

    ``data`` (tests only) replaces the Harvard data with an object offering ``batch(rng)``, ``val_pairs`` and
    ``summary`` like the trainer's.
    """
    opts, recipe, data_dir, out, checkpoint_dir = T.start_run(method, data_dir, opts, options, data is not None)
    args = dict(recipe.loss_args)
    if data is None:
        data = T._Data(replace(recipe, data="pairs"), data_dir, opts.split_seed, opts.train_split)
    a = _build(recipe, args)
    rng = np.random.default_rng(opts.seed)
    history: list[dict] = []
    start_epoch, elapsed_before, step = 0, 0.0, 0
    states = a.states()
    if opts.resume:
        ckpt = T.resume_from(opts, recipe, states, rng)
        history, start_epoch, elapsed_before, step = ckpt["history"], ckpt["epoch"], ckpt["elapsed"], ckpt["step"]
    opts.log(
        f"[{method}] {data.summary}; {recipe.epochs} epochs x {recipe.steps_per_epoch} steps, batch {recipe.batch}, "
        f"crop {recipe.crop}; adv_weight {a.adv_weight}"
    )
    val_recipe = replace(recipe, loss="fusion")
    a.gen.train()
    a.discs.train()
    t0 = time.perf_counter()
    for epoch in range(start_epoch, recipe.epochs):
        means, step = _train_epoch(a, data, rng, recipe.steps_per_epoch, step)
        row = {"epoch": epoch + 1, **means, "lr": a.sched_g.get_last_lr()[0]}
        if (epoch + 1) % opts.validate_every == 0 or epoch + 1 == recipe.epochs:
            row.update(T.validate(a.gen, val_recipe, data, a.content))
        row["elapsed_s"] = elapsed_before + time.perf_counter() - t0
        T.finish_epoch(method, recipe, opts, checkpoint_dir, epoch, row, history, states, rng, step=step)

    wall = elapsed_before + time.perf_counter() - t0
    meta = T.training_meta(method, recipe, opts, data.summary, wall, history)
    T.export_weights(a.gen, recipe, out, meta)
    rows = _card_rows(recipe, args, a, opts, data.summary)
    write_card(a.gen, recipe, meta, history, out, rows, tables="docs/methods/ddcgan.md")
    opts.log(f"[{method}] wrote {out} ({out.stat().st_size} bytes) after {wall:.0f} s")
    return {
        "weights": str(out),
        "history": history,
        "final": meta["final"],
        "train_seconds": wall,
        "data": data.summary,
    }


def _card_rows(recipe: Recipe, args: dict, a: _Adversaries, opts: T.TrainOptions, summary: str) -> list[tuple]:
    """The model card's rows specific to the adversarial loop: data, split, loss, discriminators, augmentation."""
    content_text = (
        "w_int mean((F - S_1)^2) + eta mean|grad F - grad S_2| (DDcGAN's; grad the 8-neighbour mean minus the centre)"
        if args.get("content", "ddcgan") == "ddcgan"
        else "w_ssim (1 - mean SSIM(F, S_i)) + w_grad L1(|grad F|, max_i |grad S_i|) + w_int L1(F, max_i S_i)"
    )
    gan_text = (
        "-log D_k(F); discriminators: -log D_k(S_k) - log(1 - D_k(F))"
        if args.get("gan_loss", "log") == "log"
        else "(D_k(F) - real)^2; discriminators (least squares): (D_k(S_k) - real)^2 + D_k(F)^2"
    )
    untrained = "; not trained: adv_weight 0" if a.adv_weight <= 0 else ""
    d_parameters = sum(p.numel() for p in a.discs.parameters())
    return [
        ("data", T.DATA_TEXT["pairs"]),
        ("split", f"by case id, seed {opts.split_seed}: {summary}"),
        (
            "loss",
            f"generator: content ({content_text}) + adv_weight x ramp x sum_k {gan_text}; `{json.dumps(recipe.loss_args)}`",
        ),
        (
            "discriminators",
            f"two DDcGAN discriminators ({d_parameters:,} parameters together at crop {recipe.crop}; not shipped"
            f"{untrained}), D_1 for the first source of each Harvard pair (CT, PET or SPECT), D_2 for the MRI",
        ),
        (
            "augmentation",
            f"random crop {recipe.crop} (containing foreground), flips, 90-degree rotations, per-source gain 0.8-1.2 and gamma 0.8-1.25",
        ),
    ]
