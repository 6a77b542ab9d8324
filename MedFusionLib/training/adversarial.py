"""Adversarial training of DDcGAN-lite (``medfusion train ddcgan-lite --data ../shared/data``).

A generator ``G`` (``networks/ddcgan_lite.py``) fuses a Harvard pair (S_1, S_2); two patch discriminators, one
per source, learn to tell ``S_k`` from ``G(S_1, S_2)``; the generator minimises

    content(F; S_1, S_2) + adv_weight * ramp(step) * sum_k mean((D_k(F) - real_label)^2)

with the content loss of part 1 (``losses.FusionLoss``: SSIM + gradient + intensity), and each discriminator
``mean((D_k(S_k) - real_label)^2) + mean(D_k(F)^2)`` (least-squares GAN).

Measures that keep this stable on a CPU with short runs (documented in docs/deep-fusion-part2.md):

1. warm start: the generator's output is a zero-initialised correction added to max fusion, so it starts as a
   sensible fusion and the discriminators never see noise;
2. the content loss dominates (``adv_weight`` 0.05) and the adversarial term is ramped in linearly over
   ``warmup_steps`` (the discriminators train from step 0, so they are informative when it arrives);
3. least-squares GAN losses (no saturating log-loss) and one-sided label smoothing (real label 0.9);
4. spectral normalisation in every discriminator layer, Adam with beta1 = 0.5, discriminators at half the
   generator's learning rate (two-time-scale), generator gradients clipped to norm 1;
5. seeded, deterministic kernels (``torch.use_deterministic_algorithms``), single-threaded by default.

The loop mirrors part 1's trainer (same data, split, augmentation, validation metrics, checkpoints each
epoch, ``--resume``) and is reached through ``MedFusionLib.training.train``. :func:`write_card` writes the model
cards of the part-2 loops.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.networks import build_network
from MedFusionLib.networks.ddcgan_lite import PatchDiscriminator
from MedFusionLib.training import trainer as T
from MedFusionLib.training.losses import FusionLoss
from MedFusionLib.training.recipes import RECIPES, Recipe
from MedFusionLib.training.trainer import cosine

RECIPE = RECIPES["ddcgan-lite"]  # defined with the others in recipes.py
CONTENT_KEYS = ("w_ssim", "w_grad", "w_int", "ssim_window")


def write_card(
    net,
    recipe: Recipe,
    meta: dict,
    history: list[dict],
    path: Path,
    rows: list[tuple],
    note: str = "",
    tables: str = "docs/deep-fusion-part2.md",
) -> None:
    """Markdown model card beside ``path``: ``rows`` are (item, value) pairs specific to the loop; ``tables``
    names the document holding the method's quality tables."""
    footer = (
        "Metrics: `MedFusionLib.metrics` definitions (MI in bits, SSIM summed over the sources with data range 255) on "
        f"full-size validation images. The quality tables are in {tables}."
    )
    path.with_suffix(".md").write_text(T.model_card_text(net, recipe, meta, history, path, rows, footer, note))


def train_adversarial(method: str, data_dir, opts: T.TrainOptions | None = None, data=None, **options) -> dict:
    """Train the adversarial recipe ``method``; same arguments and result as :func:`trainer.train`.

    ``data`` (tests only) replaces the Harvard data with an object offering ``batch(rng)``, ``val_pairs`` and
    ``summary`` like the trainer's.
    """
    opts = opts or T.TrainOptions(**options)
    recipe = opts.recipe(method)
    args = dict(recipe.loss_args)
    data_dir = Path(data_dir)
    if data is None and not data_dir.is_dir():
        raise MedFusionError(f"{data_dir}: no such data folder")
    out = opts.weights_path(method)
    checkpoint_dir = opts.checkpoint_path(method)
    T.seed_everything(opts.seed, opts.threads)

    data = (
        data
        if data is not None
        else T._Data(replace(recipe, data="pairs"), data_dir, opts.split_seed, opts.train_split)
    )
    gen = build_network(recipe.network, recipe.config)
    discs = torch.nn.ModuleList(PatchDiscriminator(int(args.get("d_channels", 16))) for _ in range(2))
    opt_g = torch.optim.Adam(gen.parameters(), lr=recipe.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discs.parameters(), lr=recipe.lr * float(args.get("d_lr_ratio", 0.5)), betas=(0.5, 0.999))
    total = recipe.epochs * recipe.steps_per_epoch
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, cosine(total))
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, cosine(total))
    content = FusionLoss(**{k: v for k, v in args.items() if k in CONTENT_KEYS})
    adv_weight, warmup, real = float(args["adv_weight"]), int(args["warmup_steps"]), float(args["real_label"])
    rng = np.random.default_rng(opts.seed)
    history: list[dict] = []
    start_epoch, elapsed_before, step = 0, 0.0, 0
    states = {
        "model": gen,
        "discriminators": discs,
        "opt_g": opt_g,
        "opt_d": opt_d,
        "sched_g": sched_g,
        "sched_d": sched_d,
    }
    if opts.resume:
        ckpt = T.resume_from(opts, recipe, states, rng)
        history, start_epoch, elapsed_before, step = ckpt["history"], ckpt["epoch"], ckpt["elapsed"], ckpt["step"]
    log = opts.log
    log(
        f"[{method}] {data.summary}; {recipe.epochs} epochs x {recipe.steps_per_epoch} steps, batch {recipe.batch}, crop {recipe.crop}"
    )
    val_recipe = replace(recipe, loss="fusion")

    gen.train()
    discs.train()
    t0 = time.perf_counter()
    for epoch in range(start_epoch, recipe.epochs):
        sums: dict[str, list[float]] = {"loss": [], "content": [], "adv_g": [], "loss_d": []}
        for _ in range(recipe.steps_per_epoch):
            x = data.batch(rng)  # (2, batch, 1, H, W)
            fused = gen(x)
            # discriminators: D_k tells source k (real) from the fused image (fake)
            loss_d = sum(((d(x[k]) - real) ** 2).mean() + (d(fused.detach()) ** 2).mean() for k, d in enumerate(discs))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            sched_d.step()
            # generator: content + ramped adversarial term against both discriminators
            ramp = min(1.0, step / max(1, warmup))
            loss_c = content(fused, x)
            adv = sum(((d(fused) - real) ** 2).mean() for d in discs)
            loss_g = loss_c + adv_weight * ramp * adv
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            torch.nn.utils.clip_grad_norm_(gen.parameters(), 1.0)
            opt_g.step()
            sched_g.step()
            step += 1
            for key, v in (("loss", loss_g), ("content", loss_c), ("adv_g", adv), ("loss_d", loss_d)):
                sums[key].append(float(v.detach()))
        row = {"epoch": epoch + 1, **{k: float(np.mean(v)) for k, v in sums.items()}, "lr": sched_g.get_last_lr()[0]}
        if (epoch + 1) % opts.validate_every == 0 or epoch + 1 == recipe.epochs:
            row.update(T.validate(gen, val_recipe, data, content))
        row["elapsed_s"] = elapsed_before + time.perf_counter() - t0
        T.finish_epoch(method, recipe, opts, checkpoint_dir, epoch, row, history, states, rng, step=step)

    wall = elapsed_before + time.perf_counter() - t0
    meta = T.training_meta(method, recipe, opts, data.summary, wall, history)
    final = meta["final"]
    T.export_weights(gen, recipe, out, meta)
    write_card(
        gen,
        recipe,
        meta,
        history,
        out,
        [
            ("data", T.DATA_TEXT["pairs"]),
            ("split", f"by case id, seed {opts.split_seed}: {data.summary}"),
            (
                "loss",
                "generator: content (w_ssim (1 - mean SSIM(F, S_i)) + w_grad L1(|grad F|, max_i |grad S_i|) + w_int L1(F, max_i S_i)) "
                "+ adv_weight x ramp x sum_k (D_k(F) - real)^2; discriminators (least squares): (D_k(S_k) - real)^2 + D_k(F)^2; "
                f"`{json.dumps(recipe.loss_args)}`",
            ),
            (
                "discriminators",
                f"two spectral-normalised patch discriminators ({sum(p.numel() for p in discs.parameters()):,} parameters together; not shipped), "
                "D_1 for the first source of each Harvard pair (CT, PET or SPECT), D_2 for the MRI",
            ),
            (
                "stability measures",
                "generator warm-started as max fusion (zero-initialised residual head); content loss dominant, adversarial weight ramped in; "
                "LSGAN + one-sided label smoothing; spectral norm; Adam beta1 0.5, discriminators at half the learning rate; generator gradient clipping",
            ),
            (
                "augmentation",
                f"random crop {recipe.crop} (containing foreground), flips, 90-degree rotations, per-source gain 0.8-1.2 and gamma 0.8-1.25",
            ),
        ],
    )
    log(f"[{method}] wrote {out} ({out.stat().st_size} bytes) after {wall:.0f} s")
    return {"weights": str(out), "history": history, "final": final, "train_seconds": wall, "data": data.summary}
