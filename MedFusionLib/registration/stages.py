"""One optimisation run on one pyramid level, and the rigid / affine / B-spline stages built from it.

Every run uses Mattes MI on a fixed random sample (seeded: same input, same answer) and linear
interpolation. Rigid and affine use regular-step gradient descent with parameter scales from physical
shift: it halves its step each time the direction turns back and stops only when the step is tiny, so
it does not stop after ten iterations like the textbook recipe's convergence window. The B-spline stage
uses L-BFGS-B, which copes with thousands of parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import OperationCancelled, RegistrationError
from MedFusionLib.core.progress import (
    CancelCallback,
    ProgressCallback,
    check_cancel,
    interrupt_requested,
    native_section,
    report,
)
from MedFusionLib.registration.presets import Preset
from MedFusionLib.registration.pyramid import Level


@dataclass
class Context:
    """What every run needs besides its level: settings, callbacks and running totals."""

    preset: Preset
    progress: ProgressCallback | None = None
    cancel: CancelCallback | None = None
    iterations: int = 0
    stop_reason: str = ""

    def check_cancel(self) -> None:
        check_cancel(None)  # a signal (Ctrl-C, SIGTERM)
        if self.cancel is not None and self.cancel():
            raise OperationCancelled("registration cancelled by the user")


_STOP_WORDS = (
    ("user requested", "stopped early by MedFusion"),
    ("maximum number of iterations", "reached the iteration limit"),
    ("step too small", "converged (step below the minimum)"),
    ("minimum step", "converged (step below the minimum)"),
    ("gradient magnitude tolerance", "converged (gradient below the tolerance)"),
    ("projected gradient", "converged (gradient below the tolerance)"),
    ("rel_reduction_of_f", "converged (cost change below the tolerance)"),
    ("convergence", "converged"),
)


def plain_stop_reason(description: str, iterations: int) -> str:
    """ITK's stop description (e.g. "LBFGSBOptimizerv4: User requested") in plain words, with the iteration
    count of the run it describes."""
    text = description.lower()
    words = next((plain for key, plain in _STOP_WORDS if key in text), None)
    if words is None:  # unknown wording: drop the class-name prefix
        words = description.split(": ", 1)[-1].strip().rstrip(".") or "stopped"
    return f"{words} after {iterations} iterations of the last run"


def _method(level: Level, ctx: Context, seed_offset: int = 0) -> sitk.ImageRegistrationMethod:
    R = sitk.ImageRegistrationMethod()
    R.SetMetricAsMattesMutualInformation(numberOfHistogramBins=ctx.preset.bins)
    if level.sampling < 1.0:
        R.SetMetricSamplingStrategy(R.RANDOM)
        R.SetMetricSamplingPercentage(level.sampling, ctx.preset.seed + seed_offset)
    else:
        R.SetMetricSamplingStrategy(R.NONE)
    R.SetInterpolator(sitk.sitkLinear)
    if ctx.preset.mask_dilate_mm > 0:
        if level.mask is None:
            level.mask = _loose_mask(level.fixed, ctx.preset.mask_dilate_mm)
        R.SetMetricFixedMask(level.mask)
    # Mattes MI needs no fixed-image gradient, and the moving gradient at the sample points only: building
    # whole gradient images at every run costs more than the optimisation on small levels.
    R.SetMetricUseFixedImageGradientFilter(False)
    R.SetMetricUseMovingImageGradientFilter(False)
    return R


def _loose_mask(image: sitk.Image, dilate_mm: float) -> sitk.Image:
    """Everything brighter than 5 % of the robust range, dilated: the body and a margin, never a tight mask."""
    arr = sitk.GetArrayViewFromImage(image)
    lo, hi = np.percentile(arr, (1, 99))
    mask = sitk.BinaryThreshold(image, float(lo + 0.05 * (hi - lo)), 1e30, 1, 0)
    radius = [max(1, int(round(dilate_mm / s))) for s in image.GetSpacing()]
    return sitk.BinaryDilate(mask, radius)


def _rigid_scales(fixed: sitk.Image, transform: sitk.Transform, fraction: float) -> list[float]:
    """Parameter scales as squared physical shift per unit change: 1 for translations, (fraction x the
    box half-diagonal)^2 for rotations, i.e. rotations weighted by a typical radius of the object rather
    than by the far corner of the box (which makes rotation steps too small: the optimiser crawls)."""
    lo = np.array(fixed.TransformContinuousIndexToPhysicalPoint([-0.5] * fixed.GetDimension()))
    hi = np.array(fixed.TransformContinuousIndexToPhysicalPoint([s - 0.5 for s in fixed.GetSize()]))
    radius = fraction * 0.5 * float(np.linalg.norm(hi - lo))
    n_rot = 3 if fixed.GetDimension() == 3 else 1
    return [radius**2] * n_rot + [1.0] * fixed.GetDimension()


def evaluate(level: Level, transform: sitk.Transform, ctx: Context) -> float:
    """Metric value of ``transform`` on this level (no optimisation); +inf when it cannot be computed."""
    R = _method(level, ctx)
    R.SetInitialTransform(transform, inPlace=False)
    try:
        return float(R.MetricEvaluate(level.fixed, level.moving))
    except RuntimeError:
        return math.inf


def _set_optimizer(
    R: sitk.ImageRegistrationMethod, kind: str, level: Level, transform: sitk.Transform, p, index: int, iterations: int
) -> None:
    """L-BFGS-B for the B-spline stage; regular-step gradient descent with physical scales for the linear ones."""
    if kind == "bspline":
        R.SetOptimizerAsLBFGSB(
            gradientConvergenceTolerance=1e-5,
            numberOfIterations=iterations,
            maximumNumberOfCorrections=5,
            maximumNumberOfFunctionEvaluations=4 * iterations,
            costFunctionConvergenceFactor=1e7,
        )
        return
    R.SetOptimizerAsRegularStepGradientDescent(
        learningRate=p.learning_rates[index],
        minStep=p.min_steps[index],
        numberOfIterations=iterations,
        relaxationFactor=p.relaxation,
        gradientMagnitudeTolerance=1e-8,
    )
    if kind == "rigid" and p.rotation_radius_fraction > 0:
        R.SetOptimizerScales(_rigid_scales(level.fixed, transform, p.rotation_radius_fraction))
    else:
        R.SetOptimizerScalesFromPhysicalShift()


def _watch_iterations(
    R: sitk.ImageRegistrationMethod, ctx: Context, state: dict, patience: int, tolerance: float, span, label: str
) -> None:
    """Per iteration: honour Cancel, stop a stalled metric, report progress (ITK swallows exceptions raised here:
    the optimiser is stopped and the run raises after Execute returns)."""

    def on_iteration() -> None:
        if interrupt_requested() or (ctx.cancel is not None and ctx.cancel()):
            state["cancelled"] = True
            R.StopRegistration()
            return
        # Regular-step halves its step only when the gradient turns back; along a flat valley it can crawl
        # for hundreds of iterations without gaining anything. Stop when the metric has stalled.
        it, value = R.GetOptimizerIteration(), R.GetMetricValue()
        if value < state["best"] - tolerance * abs(value):
            state["best"], state["best_it"] = value, it
        elif it - state["best_it"] >= patience:
            state["stalled"] = True
            R.StopRegistration()
        if ctx.progress is not None:
            frac = 1.0 - math.exp(-it / 40.0)
            report(ctx.progress, span[0] + (span[1] - span[0]) * frac, f"{label}: iteration {it}, metric {value:.4f}")

    R.AddCommand(sitk.sitkIterationEvent, on_iteration)


def _execute(R: sitk.ImageRegistrationMethod, level: Level, ctx: Context, state: dict, label: str) -> None:
    """Run the optimiser; a cancel, lost overlap or optimiser failure becomes one clear exception."""
    try:
        with native_section():
            R.Execute(level.fixed, level.moving)
    except RuntimeError as exc:
        ctx.check_cancel()
        if state["cancelled"]:
            raise OperationCancelled("registration cancelled by the user") from None
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "optimiser failed"
        if "outside" in str(exc) or "sample" in str(exc).lower():
            raise RegistrationError(
                f"{label}: the images stopped overlapping during registration "
                f"(too few sample points inside the moving image)"
            ) from None
        raise RegistrationError(f"{label}: optimiser failed: {msg}") from None
    ctx.check_cancel()
    if state["cancelled"]:
        raise OperationCancelled("registration cancelled by the user")


def run(
    level: Level,
    transform: sitk.Transform,
    ctx: Context,
    *,
    kind: str,
    span: tuple[float, float],
    label: str,
    iterations: int | None = None,
    moving_initial: sitk.Transform | None = None,
    index: int = 0,
    seed_offset: int = 0,
) -> float:
    """Optimise ``transform`` in place on pyramid level number ``index``; returns the final metric value."""
    ctx.check_cancel()
    p = ctx.preset
    iterations = iterations or p.iterations
    R = _method(level, ctx, seed_offset)
    _set_optimizer(R, kind, level, transform, p, index, iterations)
    if moving_initial is not None:
        R.SetMovingInitialTransform(moving_initial)
    R.SetInitialTransform(transform, inPlace=True)

    state = {"cancelled": False, "best": math.inf, "best_it": 0, "stalled": False}
    patience = p.patience if kind != "bspline" else 10**9
    tolerance = p.stall_tolerances[index]
    _watch_iterations(R, ctx, state, patience, tolerance, span, label)
    _execute(R, level, ctx, state, label)
    ctx.iterations += R.GetOptimizerIteration()
    ctx.stop_reason = (
        f"metric stalled (no gain > {tolerance:g} for {patience} iterations) after "
        f"{R.GetOptimizerIteration()} iterations of the last run"
        if state["stalled"]
        else plain_stop_reason(R.GetOptimizerStopConditionDescription(), R.GetOptimizerIteration())
    )
    value = float(R.GetMetricValue())
    report(ctx.progress, span[1], f"{label}: done, metric {value:.4f}")
    return value


# ---------------------------------------------------------------------------------------------- rigid


def _rigid(dim: int) -> sitk.Transform:
    return sitk.Euler3DTransform() if dim == 3 else sitk.Euler2DTransform()


def centre_of_mass(image: sitk.Image) -> np.ndarray:
    """Intensity centre of mass in physical space (intensities shifted to start at 0)."""
    arr = sitk.GetArrayViewFromImage(image).astype(np.float64)
    w = arr - arr.min()
    total = w.sum()
    if total <= 0:
        return box_centre(image)
    idx = [
        np.sum(w * np.arange(n).reshape([-1 if a == ax else 1 for a in range(arr.ndim)])) / total
        for ax, n in enumerate(arr.shape)
    ]
    return np.array(image.TransformContinuousIndexToPhysicalPoint(idx[::-1]))


def box_centre(image: sitk.Image) -> np.ndarray:
    return np.array(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2.0 for s in image.GetSize()]))


def rotation_matrix(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle_rad) * K + (1 - math.cos(angle_rad)) * K @ K


def translation_starts(level: Level) -> list[tuple[str, sitk.Transform]]:
    """Header position, box centres aligned, intensity centres of mass aligned (duplicates dropped)."""
    dim = level.fixed.GetDimension()
    cf, cm = centre_of_mass(level.fixed), centre_of_mass(level.moving)
    starts: list[tuple[str, sitk.Transform]] = []
    seen: list[np.ndarray] = []
    for name, shift in (
        ("header", np.zeros(dim)),
        ("geometry", box_centre(level.moving) - box_centre(level.fixed)),
        ("moments", cm - cf),
    ):
        if any(np.linalg.norm(shift - s) < level.spacing for s in seen):
            continue
        seen.append(shift)
        t = _rigid(dim)
        t.SetCenter(cf.tolist())
        t.SetTranslation(shift.tolist())
        starts.append((name, t))
    return starts


def rotated_starts(base: sitk.Transform, angle_deg: float = 30.0) -> list[tuple[str, sitk.Transform]]:
    """The best start turned by +-angle about each axis (2-D: +-15, 30, 45 and 60 degrees)."""
    out: list[tuple[str, sitk.Transform]] = []
    if base.GetDimension() == 2:  # cheap in 2-D: a denser fan
        for a in (
            angle_deg / 2,
            -angle_deg / 2,
            angle_deg,
            -angle_deg,
            1.5 * angle_deg,
            -1.5 * angle_deg,
            2 * angle_deg,
            -2 * angle_deg,
        ):
            t = sitk.Euler2DTransform(base)
            t.SetAngle(t.GetAngle() + math.radians(a))
            out.append((f"rotated {a:+.0f}", t))
        return out
    for axis in range(3):
        for sign in (1, -1):
            t = sitk.Euler3DTransform(base)
            R0 = np.array(t.GetMatrix()).reshape(3, 3)
            e = np.zeros(3)
            e[axis] = 1
            t.SetMatrix((rotation_matrix(e, math.radians(sign * angle_deg)) @ R0).ravel().tolist())
            out.append((f"rotated {'xyz'[axis]}{sign * angle_deg:+.0f}", t))
    return out


def rotation_angle_deg(t: sitk.Transform) -> float:
    m = np.array(t.GetMatrix()).reshape(t.GetDimension(), -1)
    if m.shape[0] == 2:
        return abs(math.degrees(math.atan2(m[1, 0], m[0, 0])))
    return math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(m) - 1) / 2))))


# --------------------------------------------------------------------------------- affine / B-spline


def affine_from(rigid: sitk.Transform) -> sitk.AffineTransform:
    a = sitk.AffineTransform(rigid.GetDimension())
    a.SetCenter(rigid.GetCenter())
    a.SetMatrix(rigid.GetMatrix())
    a.SetTranslation(rigid.GetTranslation())
    return a


def bspline_for(fixed: sitk.Image, grid_mm: float = 50.0) -> sitk.BSplineTransform:
    """Cubic B-spline over the fixed box with a control-point mesh of 4-8 cells per axis."""
    extent = np.array(fixed.GetSpacing()) * np.array(fixed.GetSize())
    mesh = [int(np.clip(round(e / grid_mm), 4, 8)) for e in extent]
    return sitk.BSplineTransformInitializer(fixed, mesh, 3)
