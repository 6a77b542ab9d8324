#!/usr/bin/env python
"""Registration benchmark: MedFusion vs itk-elastix's default rigid registration, same cases, same run.

Cases (``../shared/data/volumes``):
* SPM12 templates, all aligned by construction: T1 is fixed; T2, PET and SPECT are moved by known rigid
  transforms written into the moving image's header (origin and direction; no resampling), so the ground
  truth is exact. Error = mean |T_est(p) - T_true(p)| over the physical points of ``mask_ICV``.
* Porcine phantom, CT fixed <- MR T2 from its header position: no ground truth; we report how far our
  result is from elastix's (mean displacement difference over the CT object, > -400 HU).

Times are wall-clock seconds of the registration call only (image loading, itk import and conversions
excluded); elastix's result-image writing is switched off (it does not change the registration).

    python benchmarks/registration_benchmark.py            # full table (a few minutes on 2 cores)
    python benchmarks/registration_benchmark.py --no-elastix --cases T2,porcine
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from MedFusionLib.registration import register  # noqa: E402

SHARED = Path(os.environ.get("MEDFUSION_SHARED", REPO.parent / "shared"))
VOLUMES = SHARED / "data" / "volumes"

# (rotation axis, angle in degrees, shift in mm): oblique axes, >= 15 degrees, >= 15 mm.
# The preset a user would pick for each pair (porcine: what "auto" picks from the CT values).
PRESET_FOR = {"T2": "mr-mr", "PET": "pet-mr", "SPECT": "pet-mr", "porcine": "ct-mr"}

PERTURBATIONS = [
    ((1.0, 1.0, 1.0), 15.0, (10.0, -10.0, 5.0)),
    ((1.0, -2.0, 1.0), 20.0, (-12.0, 8.0, -10.0)),
    ((-2.0, 1.0, 3.0), 25.0, (5.0, 15.0, -10.0)),
]


def rotation(axis, degrees: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    th = math.radians(degrees)
    return np.eye(3) + math.sin(th) * K + (1 - math.cos(th)) * K @ K


def perturb(image: sitk.Image, R: np.ndarray, shift, centre) -> tuple[sitk.Image, sitk.Transform]:
    """Move the image by x -> R (x - c) + c + t through its header; return it and the true fixed->moving map."""
    out = sitk.Image(image)
    D = np.array(image.GetDirection()).reshape(3, 3)
    o = np.array(image.GetOrigin())
    out.SetDirection((R @ D).ravel().tolist())
    out.SetOrigin((R @ (o - centre) + centre + np.asarray(shift)).tolist())
    true = sitk.AffineTransform(3)
    true.SetCenter(centre.tolist())
    true.SetMatrix(R.ravel().tolist())
    true.SetTranslation(list(shift))
    return out, true


def displacement(t: sitk.Transform, grid: sitk.Image) -> np.ndarray:
    f = sitk.TransformToDisplacementField(
        t, sitk.sitkVectorFloat64, grid.GetSize(), grid.GetOrigin(), grid.GetSpacing(), grid.GetDirection()
    )
    return sitk.GetArrayFromImage(f)


def mean_distance(a: sitk.Transform, b: sitk.Transform, mask: sitk.Image) -> float:
    sel = sitk.GetArrayViewFromImage(mask) > 0
    d = displacement(a, mask)[sel] - displacement(b, mask)[sel]
    return float(np.mean(np.linalg.norm(d, axis=1)))


# ----------------------------------------------------------------------------------------------- elastix


def to_itk(image: sitk.Image):
    import itk

    out = itk.GetImageFromArray(sitk.GetArrayFromImage(image).astype(np.float32))
    out.SetOrigin(image.GetOrigin())
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(itk.GetMatrixFromArray(np.array(image.GetDirection()).reshape(3, 3)))
    return out


def run_elastix(fixed: sitk.Image, moving: sitk.Image) -> tuple[sitk.Transform, float]:
    """itk-elastix default rigid map (result image off); its Euler transform as a SimpleITK transform."""
    import itk

    fi, mi = to_itk(fixed), to_itk(moving)
    po = itk.ParameterObject.New()
    pm = po.GetDefaultParameterMap("rigid")
    pm["WriteResultImage"] = ["false"]
    po.AddParameterMap(pm)
    t0 = time.perf_counter()
    _, params = itk.elastix_registration_method(fi, mi, parameter_object=po, log_to_console=False)
    elapsed = time.perf_counter() - t0
    p = [float(v) for v in params.GetParameter(0, "TransformParameters")]
    c = [float(v) for v in params.GetParameter(0, "CenterOfRotationPoint")]
    zyx = params.GetParameter(0, "ComputeZYX") if "ComputeZYX" in params.GetParameterMap(0) else ("false",)
    t = sitk.Euler3DTransform(c, p[0], p[1], p[2], p[3:6])
    t.SetComputeZYX(zyx[0] == "true")
    return t, elapsed


# ------------------------------------------------------------------------------------------------- cases


def spm_cases(selected):
    spm = VOLUMES / "spm"
    fixed = sitk.ReadImage(str(spm / "T1.nii.gz"))
    mask = sitk.ReadImage(str(spm / "mask_ICV.nii.gz"))
    centre = np.array(fixed.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in fixed.GetSize()]))
    for name in ("T2", "PET", "SPECT"):
        if selected and name not in selected:
            continue
        moving0 = sitk.ReadImage(str(spm / f"{name}.nii.gz"))
        for k, (axis, deg, shift) in enumerate(PERTURBATIONS):
            moving, true = perturb(moving0, rotation(axis, deg), shift, centre)
            label = f"{deg:.0f} deg about ({', '.join(f'{a:g}' for a in axis)}), {np.linalg.norm(shift):.1f} mm"
            yield f"SPM T1 <- {name} #{k + 1} ({PRESET_FOR[name]})", label, fixed, moving, true, mask, PRESET_FOR[name]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-elastix", action="store_true", help="skip the elastix yardstick (development only)")
    ap.add_argument("--cases", default="", help="comma list among T2,PET,SPECT,porcine (default: all)")
    ap.add_argument("--mode", default="rigid", choices=("rigid", "affine"))
    args = ap.parse_args()
    selected = {c.strip() for c in args.cases.split(",") if c.strip()}
    if not VOLUMES.is_dir():
        print(f"shared volumes not found at {VOLUMES}", file=sys.stderr)
        return 2
    use_elastix = not args.no_elastix
    if use_elastix:
        import itk  # noqa: F401  (import once, outside the timings)

    rows, tot_o, tot_e, ok = [], 0.0, 0.0, True
    for case, label, fixed, moving, true, mask, preset in spm_cases(selected):
        res = register(fixed, moving, args.mode, preset=preset)
        err_o = mean_distance(res.transform, true, mask)
        tot_o += res.elapsed_s
        line = [case, label, f"{err_o:.2f}", f"{res.elapsed_s:.1f}"]
        if use_elastix:
            te, el = run_elastix(fixed, moving)
            err_e = mean_distance(te, true, mask)
            tot_e += el
            ok &= err_o <= err_e
            line += [f"{err_e:.2f}", f"{el:.1f}"]
        rows.append(line)
        print("  " + " | ".join(line) + f"   [{res.summary()}]", file=sys.stderr, flush=True)

    porcine_note = ""
    if not selected or "porcine" in selected:
        ct = sitk.ReadImage(str(VOLUMES / "porcine" / "ct.nii.gz"))
        mr = sitk.ReadImage(str(VOLUMES / "porcine" / "mr_t2.nii.gz"))
        res = register(ct, mr, args.mode, preset=PRESET_FOR["porcine"])
        tot_o += res.elapsed_s
        line = [
            f"porcine CT <- MR T2 ({PRESET_FOR['porcine']})",
            "header position (~30 mm, ~14 deg)",
            "n/a",
            f"{res.elapsed_s:.1f}",
        ]
        obj = sitk.BinaryThreshold(sitk.Shrink(ct, [2, 2, 2]), -400, 32767, 1, 0)
        ident = sitk.Euler3DTransform()
        porcine_note = (
            f"porcine: our result moves the object by {mean_distance(res.transform, ident, obj):.2f} mm "
            f"on average from the header position; metric {res.initial_metric_value:.4f} -> "
            f"{res.metric_value:.4f}"
        )
        if use_elastix:
            te, el = run_elastix(ct, mr)
            tot_e += el
            diff = mean_distance(res.transform, te, obj)
            ok &= diff <= 1.5
            line += ["n/a", f"{el:.1f}"]
            porcine_note += (
                f"; elastix moves it by {mean_distance(te, ident, obj):.2f} mm; "
                f"**ours vs elastix: {diff:.2f} mm** mean displacement difference over the CT object"
            )
        rows.append(line)
        print("  " + " | ".join(line) + f"   [{res.summary()}]", file=sys.stderr, flush=True)

    head = ["case", "perturbation", "ours error (mm)", "ours time (s)"]
    if use_elastix:
        head += ["elastix error (mm)", "elastix time (s)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    total = ["**total**", "", "", f"**{tot_o:.1f}**"] + (["", f"**{tot_e:.1f}**"] if use_elastix else [])
    print("| " + " | ".join(total) + " |")
    if porcine_note:
        print("\n" + porcine_note)
    if use_elastix:
        ok &= tot_o <= tot_e
        print(
            f"\ntarget (error <= elastix on every case, porcine within 1.5 mm of elastix, total time <= "
            f"elastix): {'MET' if ok else 'NOT MET'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
