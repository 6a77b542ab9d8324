"""Training of Liu et al.'s siamese patch classifier (``medfusion train liu-cnn --data ../shared/data``).

As in Liu, Chen, Peng & Wang (Information Fusion 36, 2017), the network learns which of two patches is the sharp
one: a training example is a patch of a clear image and the same patch Gaussian-blurred (sigma 2, 7 x 7 window,
applied ``k`` times, ``k`` drawn from 1..5: the paper's five blur levels), presented in both orders, with
cross-entropy on the label "which input is the sharp one". No fusion ground truth is needed.

Data: the single-modality slices of our Harvard training pairs (both images of each pair of the ``fit`` or
``train`` cases; the paper used ImageNet photographs), ``patch`` x ``patch`` (16 x 16) patches drawn where the
patch has detail (standard deviation >= ``MIN_STD`` of the 0..1 range: a flat patch and its blurred copy are
the same image, so its label would be noise), random flips and 90-degree rotations. Validation: the accuracy
on a fixed set of patch pairs of the model-selection (``select``) or held-out (``val``) cases, both orders.

Departures from the paper's training: Adam with cosine decay instead of SGD with momentum (a short CPU budget);
far fewer pairs (a few tens of thousands instead of millions); our medical slices instead of natural images.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.networks import build_network
from MedFusionLib.training import data as D
from MedFusionLib.training import trainer as T
from MedFusionLib.training.recipes import RECIPES, Recipe

RECIPE = RECIPES["liu-cnn"]  # defined with the others in recipes.py
BLUR_SIGMA = 2.0
BLUR_RADIUS = 3  # 7 x 7 window
BLUR_LEVELS = 5
MIN_STD = 0.02
GRID = 2  # patch positions are drawn from a grid of this step
VAL_PAIRS = 2000
VAL_SEED = 12345


def _kernel() -> torch.Tensor:
    x = torch.arange(-BLUR_RADIUS, BLUR_RADIUS + 1, dtype=torch.float32)
    g = torch.exp(-(x * x) / (2 * BLUR_SIGMA**2))
    return g / g.sum()


def blur_levels(crops: torch.Tensor, levels: int = BLUR_LEVELS) -> list[torch.Tensor]:
    """``crops`` (batch, 1, s, s) blurred 1..``levels`` times (cumulatively) by the 7 x 7 Gaussian, replicate
    padding: a list of ``levels`` tensors. Pixels farther than 3 x level from the border are exact."""
    g = _kernel()
    kx, ky = g.view(1, 1, 1, -1), g.view(1, 1, -1, 1)
    out, x = [], crops
    for _ in range(levels):
        x = F.conv2d(F.pad(x, (BLUR_RADIUS, BLUR_RADIUS, 0, 0), mode="replicate"), kx)
        x = F.conv2d(F.pad(x, (0, 0, BLUR_RADIUS, BLUR_RADIUS), mode="replicate"), ky)
        out.append(x)
    return out


class PatchPairs:
    """Sharp/blurred patch pairs drawn from single-modality slices (float32 (n, H, W) in 0..1)."""

    def __init__(self, images: np.ndarray, patch: int) -> None:
        self.images, self.patch = images, patch
        self.margin = BLUR_RADIUS * BLUR_LEVELS
        size = patch + 2 * self.margin
        self.size = size
        self.positions: list[np.ndarray] = []  # per image: (k, 2) top-left corners of the crops with detail
        for img in images:
            h, w = img.shape
            ys = np.arange(0, h - size + 1, GRID)
            xs = np.arange(0, w - size + 1, GRID)
            if not len(ys) or not len(xs):
                self.positions.append(np.zeros((0, 2), int))
                continue
            m = self.margin
            t = torch.from_numpy(img)[None, None]
            mean = F.avg_pool2d(t, patch, stride=1)[0, 0].numpy()
            sq = F.avg_pool2d(t * t, patch, stride=1)[0, 0].numpy()
            std = np.sqrt(np.clip(sq - mean * mean, 0, None))  # std of the patch whose top-left corner is (y, x)
            grid = std[np.ix_(ys + m, xs + m)]
            iy, ix = np.nonzero(grid >= MIN_STD)
            self.positions.append(np.stack([ys[iy], xs[ix]], axis=1))
        self.usable = [i for i, p in enumerate(self.positions) if len(p)]
        if not self.usable:
            raise MedFusionError("no image has patches with detail to train on")

    def batch(self, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """(sharp, blurred, blur level) for ``n`` random patches: (n, 1, patch, patch) twice and (n,) levels 1..5."""
        crops = np.empty((n, self.size, self.size), np.float32)
        for k in range(n):
            i = self.usable[rng.integers(len(self.usable))]
            y, x = self.positions[i][rng.integers(len(self.positions[i]))]
            c = self.images[i, y : y + self.size, x : x + self.size]
            if rng.random() < 0.5:
                c = c[:, ::-1]
            crops[k] = np.rot90(c, int(rng.integers(4)))
        levels = rng.integers(1, BLUR_LEVELS + 1, size=n)
        t = torch.from_numpy(crops).unsqueeze(1)
        blurred = torch.stack(blur_levels(t))  # (levels, n, 1, s, s)
        pick = blurred[torch.from_numpy(levels - 1), torch.arange(n)]
        m, p = self.margin, self.patch
        return t[..., m : m + p, m : m + p].contiguous(), pick[..., m : m + p, m : m + p].contiguous(), levels


def singles(pairs: D.PairSet) -> np.ndarray:
    """Both images of every pair as float32 (n, H, W) in 0..1, empty ones dropped."""
    flat = pairs.images.reshape(-1, *pairs.images.shape[2:]).astype(np.float32) / 255.0
    return flat[flat.max(axis=(1, 2)) > 0.05]


def pair_loss(net, sharp: torch.Tensor, blurred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy over both orders ((sharp, blurred): class 0; (blurred, sharp): class 1) and the correct
    predictions (2n booleans). The branch features of each patch are computed once."""
    fs, fb = net.features(sharp), net.features(blurred)
    logits = torch.cat([net.classify(fs, fb), net.classify(fb, fs)]).flatten(1)
    n = sharp.shape[0]
    labels = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    return F.cross_entropy(logits, labels), logits.argmax(dim=1) == labels


@torch.no_grad()
def validate(net, val: tuple[torch.Tensor, torch.Tensor, np.ndarray]) -> dict[str, float]:
    """Loss and accuracy on the fixed validation pairs, overall and on the mildest blur (level 1)."""
    net.eval()
    sharp, blurred, levels = val
    losses, hits = [], []
    for start in range(0, sharp.shape[0], 500):
        loss, ok = pair_loss(net, sharp[start : start + 500], blurred[start : start + 500])
        losses.append(float(loss) * ok.numel())
        hits.append(ok.view(2, -1))
    net.train()
    ok = torch.cat(hits, dim=1)
    mild = torch.from_numpy(levels == 1)
    return {
        "val_loss": sum(losses) / (2 * sharp.shape[0]),
        "val_accuracy": float(ok.float().mean()),
        "val_accuracy_blur1": float(ok[:, mild].float().mean()) if bool(mild.any()) else float("nan"),
    }


def train_patch_classifier(method: str, data_dir, opts: T.TrainOptions | None = None, data=None, **options) -> dict:
    """Train the patch-classifier recipe ``method``; same arguments and result as :func:`trainer.train`.

    ``data`` (tests only) replaces the Harvard slices: a pair (train images, validation images), float32
    (n, H, W) in 0..1.
    """
    opts, recipe, data_dir, out, checkpoint_dir = T.start_run(method, data_dir, opts, options, data is not None)
    started = time.perf_counter()
    net = build_network(recipe.network, recipe.config)
    patch = net.patch
    if data is None:
        train_set = D.load_pairs(data_dir, opts.train_split, opts.split_seed)
        val_set = D.load_pairs(data_dir, T.TRAIN_SPLITS[opts.train_split], opts.split_seed)
        train_images, val_images = singles(train_set), singles(val_set)
        role = "held-out" if opts.train_split == "train" else "model-selection"
        held = sorted({D.case_id(i) for i in val_set.ids}, key=int)
        summary = (
            f"{len(train_images)} single-modality slices of {len(train_set.ids)} {opts.train_split} pairs "
            f"({len(set(map(D.case_id, train_set.ids)))} cases); validation: {VAL_PAIRS} patch pairs of the "
            f"{role} cases {', '.join(held)}"
        )
    else:
        train_images, val_images = data
        summary = f"{len(train_images)} given training images, {len(val_images)} given validation images"
    train_pairs = PatchPairs(train_images, patch)
    val = PatchPairs(val_images, patch).batch(np.random.default_rng(VAL_SEED), VAL_PAIRS)

    opt, sched, rng, states, history, start_epoch, elapsed_before = T.start_loop(net, recipe, opts)
    opts.log(
        f"[{method}] {summary}; {recipe.epochs} epochs x {recipe.steps_per_epoch} steps, batch {recipe.batch} patch pairs"
    )
    net.train()
    t0 = time.perf_counter()
    for epoch in range(start_epoch, recipe.epochs):
        losses, accs = [], []
        for _ in range(recipe.steps_per_epoch):
            sharp, blurred, _ = train_pairs.batch(rng, recipe.batch)
            loss, ok = pair_loss(net, sharp, blurred)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            accs.append(float(ok.float().mean()))
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "accuracy": float(np.mean(accs))}
        row["lr"] = sched.get_last_lr()[0]
        if (epoch + 1) % opts.validate_every == 0 or epoch + 1 == recipe.epochs:
            row.update(validate(net, val))
        row["elapsed_s"] = elapsed_before + time.perf_counter() - t0
        T.finish_epoch(method, recipe, opts, checkpoint_dir, epoch, row, history, states, rng)

    wall = elapsed_before + time.perf_counter() - t0
    meta = T.training_meta(method, recipe, opts, summary, wall, history)
    T.export_weights(net, recipe, out, meta)
    write_card(net, recipe, meta, history, out)
    opts.log(
        f"[{method}] wrote {out} ({out.stat().st_size} bytes) after {wall:.0f} s (+{time.perf_counter() - started - wall:.0f} s loading)"
    )
    return {"weights": str(out), "history": history, "final": meta["final"], "train_seconds": wall, "data": summary}


def published_parameters(net) -> int:
    """Parameters of the same network with the published, unfactorised first fully connected layer."""
    fc1 = net.fc1[-1]
    c_in = net.fc1[0].in_channels
    k = fc1.kernel_size[0]
    ours = sum(p.numel() for p in net.fc1.parameters())
    return sum(p.numel() for p in net.parameters()) - ours + c_in * fc1.out_channels * k * k + fc1.out_channels


def write_card(net, recipe: Recipe, meta: dict, history: list[dict], path: Path) -> None:
    """Markdown model card beside ``path``."""
    n = sum(p.numel() for p in net.parameters())
    rows = [
        ("data", f"16 x 16 patches of single-modality Harvard slices (CT, MRI, PET and SPECT luma): {meta['data']}"),
        ("split", f"by case id (leading digits of the file id minus the last three), seed {meta['split_seed']}"),
        (
            "examples",
            f"a patch with detail (std >= {MIN_STD}) and the same patch Gaussian-blurred (sigma {BLUR_SIGMA}, 7 x 7, "
            f"applied 1..{BLUR_LEVELS} times), in both orders; label: which input is the sharp one",
        ),
        ("loss", f"cross-entropy of the 2-way softmax; `{json.dumps(recipe.loss_args)}`"),
        ("augmentation", "random flips and 90-degree rotations"),
        (
            "parameters",
            f"{n:,} (published-equivalent, unfactorised first fully connected layer: {published_parameters(net):,})",
        ),
    ]
    footer = (
        "Validation: loss and accuracy (both orders of each pair) on 2,000 fixed patch pairs of the validation cases; "
        "`val_accuracy_blur1` on the pairs with a single blur pass (the hardest). The fusion quality is in "
        "docs/methods/liu-cnn.md."
    )
    path.with_suffix(".md").write_text(
        T.model_card_text(net, recipe, meta, history, path, rows, footer), encoding="utf-8"
    )
