"""Training data: Harvard atlas slice pairs, single-modality slices and 3-D patches from aligned volumes.

* Harvard pairs (``DATA/harvard/<A>-<B>/<A>/<id>.png`` + ``<B>/<id>.png``): PET/SPECT pseudo-colour is turned
  into its luma (``round(0.299 R + 0.587 G + 0.114 B)``), the protocol of the published tables.
* Split by **case id** (the leading digits of the file id minus the last three, e.g. ``16003`` -> case 16),
  with a fixed seed, over the union of the case ids of all pairs so that a held-out case is held out everywhere;
  each modality pair keeps at least one held-out case. The held-out ("validation") cases are used only for
  reporting metrics (no early stopping or model selection on them) and by ``benchmarks/evaluate_quality.py``.
* 3-D patches: aligned volume pairs from ``DATA/volumes`` (SPM templates, all aligned by construction; SIRF
  MR T1/T2 and PET/mu-map), each mapped to 0..1 by its 99.5th percentile of foreground voxels; the
  volume's folder is its case id (``spm`` trains, ``sirf`` validates).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from MedFusionLib.core.errors import MedFusionError

PAIRS = ("CT-MRI", "PET-MRI", "SPECT-MRI")
# the modalities of each pair's two images, in their stored order (first folder, then MRI)
PAIR_MODALITIES = {"CT-MRI": ("ct", "mr"), "PET-MRI": ("pet", "mr"), "SPECT-MRI": ("spect", "mr")}
VAL_FRACTION = 0.25
SELECT_FRACTION = 0.2
SPLITS = ("train", "val", "fit", "select", "all")
SPLIT_SEED = 2024
LUMA = np.array([0.299, 0.587, 0.114])


def case_id(file_id: str) -> str:
    """AANLIB case of a file id: its leading digits minus the last three (``16003`` -> ``16``)."""
    return file_id[:-3] if len(file_id) > 3 else "0"


def read_gray(path: Path) -> np.ndarray:
    """8-bit grey image; RGB is converted to its rounded BT.601 luma."""
    import SimpleITK as sitk

    image = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = np.floor(image[..., :3].astype(np.float64) @ LUMA + 0.5)
    return np.clip(image, 0, 255).astype(np.uint8)


@dataclass
class PairSet:
    """Slice pairs of one split: uint8 arrays (n, 2, H, W), their modality pair and file id."""

    images: np.ndarray
    pair: list[str]
    ids: list[str]

    def subset(self, pair: str) -> PairSet:
        keep = [i for i, p in enumerate(self.pair) if p == pair]
        return PairSet(self.images[keep], [self.pair[i] for i in keep], [self.ids[i] for i in keep])


def harvard_root(data_dir: Path) -> Path:
    data_dir = Path(data_dir)
    for root in (data_dir / "harvard", data_dir):
        if any((root / p).is_dir() for p in PAIRS):
            return root
    raise MedFusionError(
        f"{data_dir}: no Harvard pair folders ({', '.join(PAIRS)}) found (expected DATA/harvard/<pair>)"
    )


def list_pairs(data_dir: Path) -> list[tuple[str, str, Path, Path]]:
    """(pair, file id, path of the first modality, path of the second) for every pair found."""
    root = harvard_root(data_dir)
    found = []
    for pair in PAIRS:
        folder = root / pair
        if not folder.is_dir():
            continue
        first, second = pair.split("-")
        for path in sorted((folder / first).glob("*.png")):
            other = folder / second / path.name
            if other.exists():
                found.append((pair, path.stem, path, other))
    if not found:
        raise MedFusionError(f"{root}: no image pairs found")
    return found


def split_cases(
    pairs: Sequence[tuple[str, str]], seed: int = SPLIT_SEED, val_fraction: float = VAL_FRACTION
) -> dict[str, set]:
    """Split case ids into ``{"train": set, "val": set}``, by case, reproducibly.

    ``pairs`` lists (modality pair, file id). Cases are shuffled with ``seed``; the first ``val_fraction`` go to
    validation; then any modality pair with no validation case (or no training case) gets its first case (in
    the shuffled order) moved accordingly.
    """
    cases = sorted({case_id(fid) for _, fid in pairs}, key=lambda c: (len(c), c))
    rng = random.Random(seed)
    order = cases[:]
    rng.shuffle(order)
    n_val = max(1, int(round(val_fraction * len(order))))
    val = _spread_over_pairs(set(order[:n_val]), order, pairs, min_cases=1)
    train = set(cases) - val
    select = _selection_cases(pairs, train, seed)
    return {"train": train, "val": val, "fit": train - select, "select": select}


def _selection_cases(pairs: Sequence[tuple[str, str]], train: set, seed: int) -> set:
    """Model-selection cases: a seeded ``SELECT_FRACTION`` of the training cases, at least one per modality pair.

    ``fit`` + ``select`` = ``train``. Recipe and checkpoint choices are made by training on ``fit`` and scoring
    on ``select``, so the held-out ``val`` cases are only looked at for the final report.
    """
    rng = random.Random(seed + 1)
    order = sorted(train, key=lambda c: (len(c), c))
    rng.shuffle(order)
    select = set(order[: max(1, int(round(SELECT_FRACTION * len(order))))])
    return _spread_over_pairs(select, order, pairs, min_cases=2)


def _spread_over_pairs(chosen: set, order: Sequence[str], pairs: Sequence[tuple[str, str]], min_cases: int) -> set:
    """Give every modality pair with at least ``min_cases`` cases in ``order`` one chosen case and one left over.

    A pair with none chosen gets its first case (in ``order``); a pair with all chosen gives back its last.
    """
    for pair in sorted({p for p, _ in pairs}):
        of_pair = {case_id(f) for p, f in pairs if p == pair}
        pair_cases = [c for c in order if c in of_pair]
        if len(pair_cases) >= min_cases and not any(c in chosen for c in pair_cases):
            chosen.add(pair_cases[0])
        if len(pair_cases) > 1 and all(c in chosen for c in pair_cases):
            chosen.discard(pair_cases[-1])
    return chosen


def load_pairs(data_dir: Path, split: str, seed: int = SPLIT_SEED, pairs: Sequence[str] = PAIRS) -> PairSet:
    """Load the ``split`` slice pairs as uint8 (n, 2, H, W).

    ``split``: "train" or "val" (held out, by case), "fit" and "select" (the training cases split again, by
    case, for model selection), or "all".
    """
    if split not in SPLITS:
        raise MedFusionError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    listing = list_pairs(data_dir)
    cases = split_cases([(p, f) for p, f, _, _ in listing], seed)
    chosen = [row for row in listing if row[0] in pairs and (split == "all" or case_id(row[1]) in cases[split])]
    if not chosen:
        raise MedFusionError(f"no {split} pairs in {data_dir}")
    images = np.stack([np.stack([read_gray(a), read_gray(b)]) for _, _, a, b in chosen])
    return PairSet(images, [row[0] for row in chosen], [row[1] for row in chosen])


# ---------------------------------------------------------------- augmentation / batches (2-D)
def augment_pair(
    pair: np.ndarray, rng: np.random.Generator, crop: int, gamma_range: tuple[float, float] = (0.8, 1.25)
) -> np.ndarray:
    """Random crop (with foreground), flips, 90-degree rotations and per-source intensity jitter.

    ``pair``: float32 (n, H, W) in 0..1. Jitter: gain 0.8..1.2 and a gamma drawn log-uniformly from ``gamma_range``
    per source, clipped to 0..1, so background stays black.
    """
    n, h, w = pair.shape
    crop = min(crop, h, w)
    fg = np.argwhere(pair.max(axis=0) > 0.05)
    for _ in range(10):
        if len(fg):
            cy, cx = fg[rng.integers(len(fg))]
            y = int(np.clip(cy - crop // 2 + rng.integers(-crop // 4, crop // 4 + 1), 0, h - crop))
            x = int(np.clip(cx - crop // 2 + rng.integers(-crop // 4, crop // 4 + 1), 0, w - crop))
        else:
            y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        out = pair[:, y : y + crop, x : x + crop]
        if (out > 0.05).mean() > 0.1:
            break
    if rng.random() < 0.5:
        out = out[:, :, ::-1]
    if rng.random() < 0.5:
        out = out[:, ::-1, :]
    out = np.rot90(out, int(rng.integers(4)), axes=(1, 2))
    gain = rng.uniform(0.8, 1.2, size=(n, 1, 1))
    gamma = np.exp(rng.uniform(np.log(gamma_range[0]), np.log(gamma_range[1]), size=(n, 1, 1)))
    out = np.clip(gain * np.power(np.clip(out, 0, 1), gamma), 0, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


def volume_like(pair: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Make one 8-bit Harvard pair (n, H, W, 0..1, black background) look like a normalised real volume slice.

    Why: the volumes a Slicer user loads are percentile-normalised (bright foreground, 0.5 % at 1), with
    smooth functional images and backgrounds that are not exactly black; trained on Harvard slices alone the
    network learns a contrast for 8-bit images that washes those out. Per source: re-normalisation by a random
    high percentile (97..99.9) of its foreground, clipped to 1; with probability 1/3 a Gaussian blur (sigma
    0.5..1.5 pixels, the smoothness of PET/SPECT); with probability 1/3 a background offset (0..0.04) below the
    foreground. Geometry is unchanged.
    """
    from scipy import ndimage

    out = np.array(pair, dtype=np.float32, copy=True)
    for i in range(out.shape[0]):
        src = out[i]
        fg = src > 0.05
        if fg.any():
            top = float(np.percentile(src[fg], rng.uniform(97.0, 99.9)))
            if top > 0.1:
                src = np.clip(src / top, 0, 1)
        if rng.random() < 1 / 3:
            src = ndimage.gaussian_filter(src, rng.uniform(0.5, 1.5))
        if rng.random() < 1 / 3:
            src = np.where(src > 0.05, src, np.maximum(src, rng.uniform(0.0, 0.04)))
        out[i] = src
    return out


# ---------------------------------------------------------------- volumes (3-D)
VOLUME_PAIRS = (
    ("spm", "T1", "PET"),
    ("spm", "T1", "SPECT"),
    ("spm", "T2", "PET"),
    ("spm", "T2", "SPECT"),
    ("spm", "PD", "PET"),
    ("spm", "T1", "T2"),
    ("sirf", "mr_t1_64", "mr_t2_64"),
    ("sirf", "pet", "mumap"),
)
VOLUME_VAL_CASES = ("sirf",)


def normalise_volume(array: np.ndarray) -> np.ndarray:
    """0..1 by the 99.5th percentile of foreground (> 1 % of max) voxels, negatives clipped."""
    array = np.nan_to_num(array.astype(np.float32))
    array = array - min(0.0, float(array.min())) if array.min() < 0 and np.percentile(array, 1) < 0 else array
    top = float(array.max())
    if top <= 0:
        return np.zeros_like(array)
    fg = array[array > 0.01 * top]
    hi = float(np.percentile(fg, 99.5)) if fg.size else top
    return np.clip(array / max(hi, 1e-6), 0, 1).astype(np.float32)


def load_volume_pairs(data_dir: Path, split: str) -> list[np.ndarray]:
    """Aligned volume pairs as float32 (2, D, H, W) in 0..1; the second is resampled onto the first's grid."""
    import SimpleITK as sitk

    root = Path(data_dir)
    root = root / "volumes" if (root / "volumes").is_dir() else root
    out = []
    for case, a, b in VOLUME_PAIRS:
        if split != "all" and (case in VOLUME_VAL_CASES) != (split == "val"):
            continue
        pa, pb = root / case / f"{a}.nii.gz", root / case / f"{b}.nii.gz"
        if not (pa.exists() and pb.exists()):
            continue
        fixed = sitk.Cast(sitk.ReadImage(str(pa)), sitk.sitkFloat32)
        moving = sitk.Cast(sitk.ReadImage(str(pb)), sitk.sitkFloat32)
        moving = sitk.Resample(moving, fixed, sitk.Transform(), sitk.sitkLinear, 0.0)
        out.append(
            np.stack(
                [normalise_volume(sitk.GetArrayFromImage(fixed)), normalise_volume(sitk.GetArrayFromImage(moving))]
            )
        )
    if not out:
        raise MedFusionError(f"{root}: no aligned volume pairs found for split {split!r}")
    return out


def random_patch(volume: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random ``size``^3 patch (zero-padded where the volume is thinner) with foreground, flipped and jittered."""
    n = volume.shape[0]
    pad = [(0, 0)] + [(0, max(0, size - s)) for s in volume.shape[1:]]
    vol = np.pad(volume, pad) if any(p[1] for p in pad) else volume
    fg = np.argwhere(vol.max(axis=0) > 0.05)
    starts = []
    for axis in range(3):
        extent = vol.shape[axis + 1]
        c = fg[rng.integers(len(fg)), axis] if len(fg) else extent // 2
        starts.append(int(np.clip(c - size // 2, 0, extent - size)))
    d, h, w = starts
    out = vol[:, d : d + size, h : h + size, w : w + size]
    for axis in (1, 2, 3):
        if rng.random() < 0.5:
            out = np.flip(out, axis=axis)
    gain = rng.uniform(0.8, 1.2, size=(n, 1, 1, 1))
    gamma = np.exp(rng.uniform(np.log(0.8), np.log(1.25), size=(n, 1, 1, 1)))
    return np.ascontiguousarray(np.clip(gain * np.power(out, gamma), 0, 1), dtype=np.float32)


# ---------------------------------------------------------------- real volumes as 2-D slices (fusion-unet)
@dataclass(frozen=True)
class VolumePair:
    """One aligned (or registered) real volume pair: case folder, the two file stems and their modalities.

    The second volume is resampled onto the first's grid through their headers (identity transform), unless
    ``register`` is true (the porcine pair: its headers are ~30 mm and ~14 degrees apart)."""

    case: str
    first: str
    first_modality: str
    second: str
    second_modality: str
    register: bool = False

    @property
    def name(self) -> str:
        return f"{self.case}/{self.first}+{self.second}"


# The split of the real volume pairs, fixed before any result on them was looked at: by *source* (subject), so
# no report volume (nor any volume of its subject) is ever trained or chosen on. select: the six SPM template
# pairs (MR T1/T2/PD with PET and SPECT) train fusion-unet (as slices along the three axes) and choose among
# recipes and methods; report: every other subject, scored once after the choice.
VOLUME_SELECT = tuple(
    VolumePair("spm", mr, "mr", functional, functional.lower())
    for mr in ("T1", "T2", "PD")
    for functional in ("PET", "SPECT")
)
VOLUME_REPORT = (
    VolumePair("sirf", "mr_t1_64", "mr", "mr_t2_64", "mr"),
    VolumePair("sirf", "mumap", "ct", "pet", "pet"),
    VolumePair("sts002", "ct", "ct", "pet_suv", "pet"),
    VolumePair("sts002", "ct", "ct", "mr_t1", "mr"),
    VolumePair("sts002", "mr_t1", "mr", "pet_suv", "pet"),
    VolumePair("porcine", "ct", "ct", "mr_t2", "mr", register=True),
)
VOLUME_SPLITS = {"select": VOLUME_SELECT, "report": VOLUME_REPORT}
SLICE_FOREGROUND = 0.1  # a training slice needs at least this share of foreground (> 0.05 after normalisation)


def volumes_root(data_dir: Path) -> Path:
    root = Path(data_dir)
    return root / "volumes" if (root / "volumes").is_dir() else root


def normalise_by_modality(image, modality: str) -> np.ndarray:
    """The project's documented normalisation of one volume (``core.normalization``): CT window, else the
    percentile rule; NaN (outside a mask) becomes background. ``mumap`` (attenuation, 1/cm) is not in HU, so
    it takes the percentile rule although it is anatomy like CT."""
    import SimpleITK as sitk

    from MedFusionLib.core.normalization import normalize

    array = sitk.GetArrayFromImage(image)
    if np.isnan(array).any():
        clean = sitk.GetImageFromArray(np.nan_to_num(array, nan=float(np.nanmin(array))))
        clean.CopyInformation(image)
        image = clean
    rule = modality if modality == "ct" and float(array.min()) < -500 else "mr"
    return normalize(image, rule)[0]


def load_volume_pair(data_dir: Path, pair: VolumePair, transform=None) -> np.ndarray:
    """``pair`` as float32 (2, D, H, W) in 0..1 on the first volume's grid (``transform``: fixed -> moving)."""
    import SimpleITK as sitk

    root = volumes_root(data_dir) / pair.case
    fixed = sitk.Cast(sitk.ReadImage(str(root / f"{pair.first}.nii.gz")), sitk.sitkFloat32)
    moving = sitk.Cast(sitk.ReadImage(str(root / f"{pair.second}.nii.gz")), sitk.sitkFloat32)
    second = normalise_by_modality(moving, pair.second_modality)
    normalised = sitk.GetImageFromArray(second)
    normalised.CopyInformation(moving)
    resampled = sitk.Resample(normalised, fixed, transform or sitk.Transform(), sitk.sitkLinear, 0.0)
    first = normalise_by_modality(fixed, pair.first_modality)
    return np.stack([first, sitk.GetArrayFromImage(resampled)]).astype(np.float32)


def volume_slices(volume: np.ndarray, step: int = 2) -> list[np.ndarray]:
    """Every ``step``-th slice of a (2, D, H, W) pair along each of the three axes that holds foreground."""
    out = []
    for axis in (1, 2, 3):
        for index in range(0, volume.shape[axis], step):
            piece = np.take(volume, index, axis=axis)
            if _foreground(piece).mean() >= SLICE_FOREGROUND:
                out.append(np.ascontiguousarray(piece))
    return out


def load_volume_slices(data_dir: Path, split: str = "select", step: int = 2) -> list[np.ndarray]:
    """Slices (2, H, W) of the ``split`` volume pairs (only pairs aligned by their headers) along three axes."""
    return load_labelled_volume_slices(data_dir, split, step)[0]


def load_labelled_volume_slices(
    data_dir: Path, split: str = "select", step: int = 2
) -> tuple[list[np.ndarray], list[tuple[str, str]]]:
    """:func:`load_volume_slices` and, for each slice, its pair's two modalities (for a modality-aware network)."""
    pairs = [p for p in VOLUME_SPLITS[split] if not p.register]
    root = volumes_root(data_dir)
    found = [p for p in pairs if all((root / p.case / f"{n}.nii.gz").exists() for n in (p.first, p.second))]
    if not found:
        raise MedFusionError(f"{root}: none of the {split} volume pairs found")
    slices, modalities = [], []
    for pair in found:
        pieces = volume_slices(load_volume_pair(data_dir, pair), step)
        slices += pieces
        modalities += [(pair.first_modality, pair.second_modality)] * len(pieces)
    return slices, modalities


def pad_to(pair: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad (background) a (n, H, W) pair, centred, to at least ``size`` x ``size``."""
    _, h, w = pair.shape
    dh, dw = max(0, size - h), max(0, size - w)
    if not (dh or dw):
        return pair
    return np.pad(pair, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))


SATURATED = 250 / 255  # "saturated": at or above 250 of 255
FOREGROUND = 0.05  # a voxel is foreground where the brightest source is above 5 % of the range


def _foreground(sources: np.ndarray) -> np.ndarray:
    """Where the brightest source is above FOREGROUND: the voxels the shares below are taken over."""
    return np.asarray(sources).max(axis=0) > FOREGROUND


def saturation_share(fused: np.ndarray, sources: np.ndarray) -> float:
    """Share of the foreground (brightest source > 5 %) at >= 250 of 255 in ``fused`` (0..1, any shape)."""
    foreground = _foreground(sources)
    return float((np.asarray(fused)[foreground] >= SATURATED).mean()) if foreground.any() else 0.0


DARKER = 0.1  # "darker than both sources": at least this far (25.5 of 255) below the darkest source


def darker_than_sources_share(fused: np.ndarray, sources: np.ndarray) -> float:
    """Share of the foreground where ``fused`` is at least DARKER below *every* source: contrast made by darkening
    past what any source shows (the brightness hinge of the fusion loss does not forbid it)."""
    sources = np.asarray(sources)
    foreground = _foreground(sources)
    if not foreground.any():
        return 0.0
    return float((np.asarray(fused)[foreground] <= sources.min(axis=0)[foreground] - DARKER).mean())
