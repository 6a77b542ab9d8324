"""register(): multi-start, multi-resolution Mattes-MI registration (rigid, affine, B-spline on affine)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import SimpleITK as sitk

from MedFusionLib.core.errors import InputError, RegistrationError
from MedFusionLib.core.log import note
from MedFusionLib.core.options import REGISTRATION_MODES
from MedFusionLib.core.progress import CancelCallback, ProgressCallback, report
from MedFusionLib.registration import checks, plausibility, stages
from MedFusionLib.registration.presets import PRESETS, get_preset, guess_preset
from MedFusionLib.registration.pyramid import Level, as_scalar_float, build_pyramid, clip_intensities

MODES = REGISTRATION_MODES  # the registration core itself: none is the pipeline's business
Context = stages.Context


@dataclass
class RegistrationResult:
    transform: sitk.Transform  # fixed physical point -> moving physical point (ITK convention)
    mode: str
    stop_reason: str
    metric_value: float  # final Mattes MI (negative = better)
    initial_metric_value: float  # at the header position, same level and samples
    iterations: int  # optimiser iterations, all starts and levels
    elapsed_s: float
    starts_tried: int
    preset: str = ""
    warning: str | None = None  # why the result looks implausible (kept with force=True), else None

    def summary(self) -> str:
        return (
            f"{self.mode} registration ({self.preset}): metric {self.initial_metric_value:.4f} -> "
            f"{self.metric_value:.4f}, {self.iterations} iterations in all over {self.starts_tried} start(s) and "
            f"the pyramid levels, {self.elapsed_s:.1f} s; last run: {self.stop_reason}"
        )


def _search_starts(coarse: Level, candidates, ctx: Context, span) -> tuple[float, sitk.Transform | None, int]:
    """Run every candidate on the coarse level; keep the one with the best (lowest) metric."""
    best_v, best_stop = math.inf, ""
    best_t: sitk.Transform | None = None  # None: no start converged (``_looks_bad`` says so)
    n = len(candidates)
    for i, (name, t) in enumerate(candidates):
        sub = (span[0] + (span[1] - span[0]) * i / n, span[0] + (span[1] - span[0]) * (i + 1) / n)
        try:
            v = stages.run(coarse, t, ctx, kind="rigid", span=sub, label=f"rigid, start '{name}'")
        except RegistrationError:
            continue
        if v < best_v:
            best_v, best_t, best_stop = v, t, ctx.stop_reason
    ctx.stop_reason = best_stop
    return best_v, best_t, n


def _looks_bad(coarse: Level, t: sitk.Transform | None, ctx: Context) -> bool:
    """A start converged badly when little overlaps, the angle is implausible or it ran out of iterations."""
    if t is None:
        return True
    if "iteration limit" in ctx.stop_reason:
        return True
    if stages.rotation_angle_deg(t) > 40.0:
        return True
    return checks.overlap_fraction(coarse.fixed, coarse.moving, t) < 0.7


def _register_once(levels: list[Level], mode: str, ctx: Context, rotated: bool) -> tuple[sitk.Transform, float, int]:
    coarse, fine = levels[0], levels[-1]
    starts = stages.translation_starts(coarse)
    best_v, best_t, tried = _search_starts(coarse, starts, ctx, (0.02, 0.15))
    # 2-D coarse levels cost next to nothing, and a round head slice leaves rotation weakly determined:
    # always search the rotated starts there.
    if rotated or coarse.fixed.GetDimension() == 2 or _looks_bad(coarse, best_t, ctx):
        base = best_t if best_t is not None else starts[0][1]
        v, t, n = _search_starts(coarse, stages.rotated_starts(base), ctx, (0.15, 0.3))
        tried += n
        if t is not None and v < best_v:
            best_v, best_t = v, t
    if best_t is None:
        raise RegistrationError("registration failed: no start could be optimised (images do not overlap?)")

    rest = levels[1:]
    n = len(rest)

    def span(a: float, b: float, i: int) -> tuple[float, float]:
        return a + (b - a) * i / n, a + (b - a) * (i + 1) / n

    a, b = {"rigid": (0.3, 0.95), "affine": (0.3, 0.6), "deformable": (0.3, 0.5)}[mode]
    for i, level in enumerate(rest):
        stages.run(level, best_t, ctx, kind="rigid", label=f"rigid, level {i + 2}", index=i + 1, span=span(a, b, i))
    transform: sitk.Transform = best_t
    if mode in ("affine", "deformable"):
        affine = stages.affine_from(best_t)
        a, b = (0.6, 0.95) if mode == "affine" else (0.5, 0.65)
        for i, level in enumerate(rest):
            stages.run(
                level, affine, ctx, kind="affine", label=f"affine, level {i + 2}", index=i + 1, span=span(a, b, i)
            )
        transform = affine
        if mode == "deformable":
            bspline = stages.bspline_for(fine.fixed)
            for i, level in enumerate(rest):
                stages.run(
                    level,
                    bspline,
                    ctx,
                    kind="bspline",
                    label=f"B-spline, level {i + 2}",
                    index=i + 1,
                    iterations=25,
                    moving_initial=affine,
                    span=span(0.65, 0.95, i),
                )
            transform = sitk.CompositeTransform([affine, bspline])
    # Judge the result as the start was judged: same level, same samples.
    return transform, stages.evaluate(fine, transform, ctx), tried


def _checked_inputs(fixed: sitk.Image, moving: sitk.Image, mode: str, preset: str) -> tuple[sitk.Image, sitk.Image]:
    """Both images as scalar float32 after the argument, dimension and field-of-view checks (InputError)."""
    if mode not in MODES:
        raise InputError(f"unknown registration mode {mode!r}: choose one of {', '.join(MODES)}")
    if preset not in PRESETS:
        raise InputError(f"unknown registration preset {preset!r}: choose one of {', '.join(PRESETS)}")
    f = as_scalar_float(fixed, "fixed")
    m = as_scalar_float(moving, "moving")
    if f.GetDimension() != m.GetDimension():
        raise InputError(f"fixed image is {f.GetDimension()}-D but moving image is {m.GetDimension()}-D")
    checks.check_fields_of_view(f, m)
    return f, m


def _retry_wider(levels, mode: str, ctx: Context, header: sitk.Transform, first: tuple, tried: int):
    """Last resort before giving up: search rotated starts too, and refine the header position itself on the finer
    levels (the coarse level can prefer a wrong optimum); (value, transform, starts tried) of the best final metric."""
    report(ctx.progress, 0.5, "first result looks wrong: trying rotated starts and the header position")
    again, again_value, more = _register_once(levels, mode, ctx, rotated=True)
    tried += more + (mode == "rigid")
    candidates = [first, (again_value, again)]
    if mode == "rigid":
        for i, level in enumerate(levels[1:]):
            stages.run(
                level,
                header,
                ctx,
                kind="rigid",
                label=f"rigid from header, level {i + 2}",
                index=i + 1,
                span=(0.8, 0.95),
            )
        candidates.append((stages.evaluate(levels[-1], header, ctx), header))
    value, transform = min(candidates, key=lambda c: c[0])
    return value, transform, tried


def register(
    fixed: sitk.Image,
    moving: sitk.Image,
    mode: str = "rigid",
    *,
    preset: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
    force: bool = False,
) -> RegistrationResult:
    """Register ``moving`` onto ``fixed``; the result's transform maps fixed points to moving points.

    2-D or 3-D scalar images of any pixel type (colour is turned into luma). ``preset`` is one of
    PRESETS; "auto" picks the preset for the detected modalities (presets.guess_preset: "ct-mr" when an image holds Hounsfield units).
    Raises InputError on bad arguments, RegistrationError when the result cannot be trusted,
    ImplausibleRegistration when it converged but looks wrong (``plausibility``; ``force=True`` keeps it, with
    the reason in ``warning``), OperationCancelled when ``cancel()`` returns True.
    """
    t0 = time.perf_counter()
    f, m = _checked_inputs(fixed, moving, mode, preset)
    name = guess_preset(fixed, moving) if preset == "auto" else preset
    if preset == "auto":
        note(f"registration preset {name} (auto: from the detected modalities of the fixed and moving images)")
    settings = get_preset(name)
    ctx = Context(settings, progress, cancel)
    report(progress, 0.0, f"{mode} registration ({name}): preparing images")
    ctx.check_cancel()
    f = clip_intensities(f, settings.clip_percentiles)
    m = clip_intensities(m, settings.clip_percentiles)
    levels = build_pyramid(f, m, settings)
    ctx.check_cancel()

    header = stages.translation_starts(levels[0])[0][1]
    initial = stages.evaluate(levels[-1], header, ctx)
    transform, value, tried = _register_once(levels, mode, ctx, rotated=False)
    try:
        checks.check_result(levels[0].fixed, levels[0].moving, transform, initial, value)
    except RegistrationError:
        value, transform, tried = _retry_wider(levels, mode, ctx, header, (value, transform), tried)
        checks.check_result(levels[0].fixed, levels[0].moving, transform, initial, value)
    warning = plausibility.implausibility(f, m, transform, value)
    if warning and not force:
        raise plausibility.ImplausibleRegistration(warning, value)
    report(progress, 1.0, f"{mode} registration done: metric {value:.4f}")
    return RegistrationResult(
        warning=warning,
        transform=transform,
        mode=mode,
        stop_reason=ctx.stop_reason,
        metric_value=value,
        initial_metric_value=initial,
        iterations=ctx.iterations,
        elapsed_s=time.perf_counter() - t0,
        starts_tried=tried,
        preset=name,
    )
