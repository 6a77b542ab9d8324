"""Synthetic inputs the fusion tests share: a head-like phantom whose inputs each carry what one modality would."""

from __future__ import annotations

import numpy as np


def phantom_inputs(shape, seed: int = 0, step: float = 0.4, noise: float = 0.02) -> list[np.ndarray]:
    """Three float32 inputs in 0..1 over a disc (ball) of ``shape``: MR-like anatomy (two tissue levels ``step``
    apart plus Gaussian ``noise``), PET-like uptake (a hot spot and a rim) and T2-like bands; take ``[:2]`` for a
    pair. Seeded: the same arguments give the same arrays."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r2 = sum(g * g for g in grids)
    anatomy = np.where(r2 < 0.6, 0.3 + step * (grids[-1] > 0), 0.0) + noise * rng.standard_normal(shape) * (r2 < 0.6)
    uptake = np.where(r2 < 0.15, 0.9, 0.0) + np.where((r2 > 0.5) & (r2 < 0.6), 0.6, 0.0)
    bands = np.where(r2 < 0.6, 0.5 + 0.3 * np.sin(6 * grids[0]), 0.0)
    return [np.clip(v, 0, 1).astype(np.float32) for v in (anatomy, uptake, bands)]


def phantom_pair_files(folder, shape=(6, 40, 36)) -> tuple:
    """The phantom's first two inputs written as int16 NIfTI files in ``folder`` (for command-line tests)."""
    from pathlib import Path

    import SimpleITK as sitk

    paths = []
    for i, array in enumerate(phantom_inputs(shape)[:2]):
        path = Path(folder) / f"in{i}.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray((array * 1000).astype(np.int16)), str(path))
        paths.append(path)
    return paths[0], paths[1]


def sample_pair_files(folder, mr_name: str = "mr.nii.gz") -> dict:
    """The embedded CT + MR phantom (``samples.phantom``) written to ``folder``: paths under "ct" and "mr",
    the phantom itself under "pair" and the folder under "folder" (for command-line tests)."""
    from pathlib import Path

    import SimpleITK as sitk

    from MedFusionLib.samples.phantom import make_phantom_pair

    folder, pair = Path(folder), make_phantom_pair()
    sitk.WriteImage(pair.ct, str(folder / "ct.nii.gz"))
    sitk.WriteImage(pair.mr, str(folder / mr_name))
    return {"ct": folder / "ct.nii.gz", "mr": folder / mr_name, "pair": pair, "folder": folder}


UNUSUAL_UNIT_KINDS = ("negative mr", "pet in bq/ml", "16-bit png")


def unusual_unit_files(folder, kind: str) -> tuple:
    """Two phantom inputs in unusual units written to ``folder`` (one of ``UNUSUAL_UNIT_KINDS``): MR offset to
    -800..200 or in plain arbitrary units beside a smooth PET in Bq/ml (up to 25,000), or a 16-bit PNG beside an 8-bit
    one; returns their paths and the foreground (where either source is above 5 % of its range)."""
    from pathlib import Path

    import SimpleITK as sitk
    from scipy.ndimage import gaussian_filter

    folder = Path(folder)

    def write(array: np.ndarray, name: str) -> Path:
        sitk.WriteImage(sitk.GetImageFromArray(array), str(folder / name))
        return folder / name

    if kind == "16-bit png":
        anatomy, uptake, _ = phantom_inputs((96, 96))
        a = write((anatomy * 60000).astype(np.uint16), "mr16.png")
        return a, write((uptake * 255).astype(np.uint8), "pet8.png"), (anatomy > 0.05) | (uptake > 0.05)
    if kind not in UNUSUAL_UNIT_KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {UNUSUAL_UNIT_KINDS}")
    anatomy, uptake, _ = phantom_inputs((12, 64, 56))
    uptake = gaussian_filter(uptake, 1.5)  # PET is smooth (a few mm of resolution), not a set of sharp discs
    offset = 800 if kind == "negative mr" else 0  # MR in arbitrary units offset below zero: background at -800
    mr = write((anatomy * 1000 - offset).astype(np.float32), "mr.nii.gz")
    pet = write((uptake * 25000).astype(np.float32), "pet-bqml.nii.gz")  # PET in Bq/ml
    return mr, pet, (anatomy > 0.05) | (uptake > 0.05)


def fuse_with_cli(a, b, method: str | None, folder) -> tuple[np.ndarray, str]:
    """``medfusion fuse a b`` (the default method, or ``method``) into ``folder``: the fused image (0..255) and
    everything the command wrote (its detection lines, the output path); RuntimeError with that text if it fails."""
    import contextlib
    import io
    from pathlib import Path

    import SimpleITK as sitk

    from MedFusionLib.apps import cli

    a, b = Path(a), Path(b)
    out = Path(folder) / f"fused-{method or 'default'}{''.join(a.suffixes)}"
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        code = cli.main(["fuse", str(a), str(b), "-o", str(out)] + (["--method", method] if method else []))
    if code != 0:
        raise RuntimeError(f"medfusion fuse {a.name} {b.name} exited {code}: {said.getvalue().strip()}")
    return sitk.GetArrayFromImage(sitk.ReadImage(str(out))).astype(np.float64), said.getvalue()


def saturated_share(fused: np.ndarray, foreground: np.ndarray) -> float:
    """Share of the foreground at >= 250 of 255 (the saturation of issue 19)."""
    return float((fused[foreground] >= 250).mean())


# the command-line options of a one-step `medfusion train` run (no validation before its 9th epoch: it never comes)
SHORT_TRAIN = ["--epochs", "1", "--steps-per-epoch", "1", "--batch", "2", "--threads", "1", "--validate-every", "9"]


def quick_train(method: str, data, folder, name: str | None = None, **options):
    """``training.train`` for a test: one short seeded epoch on one thread, validated, quiet; writes
    ``folder/<name or method>.pt`` and checkpoints under ``folder/ck-<name or method>``. ``options`` override."""
    from pathlib import Path

    from MedFusionLib.training import train

    name = name or method
    settings = dict(epochs=1, steps_per_epoch=2, batch=2, threads=1, validate_every=1, quiet=True)
    settings.update(options)
    folder = Path(folder)
    return train(method, data, out=folder / f"{name}.pt", checkpoint_dir=folder / f"ck-{name}", **settings)
