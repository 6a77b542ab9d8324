"""Time the metric suite: each metric on one 256x256 triple, all 16 together, and a 256x256x200 volume.

Usage (from the repository root)::

    python benchmarks/metrics_benchmark.py [--repeats 15] [--volume-repeats 3] [--case SPECT-MRI_10030 --fused mean]

The triple comes from ../shared/metrics/vectors when present (else a generated one). The volume is 200
slices built from the triple (each slice shifted and with a little noise, so no two slices are equal),
scored per slice along axis 0 with the rule the fusion pipeline uses ("as-is"), 3-D variants excluded;
the 3-D variants are timed separately. Every slice of that volume is a full section (the worst case);
a head-shaped volume (sections shrinking to nothing at both ends, as in a brain scan) is timed too. Times are wall-clock (time.perf_counter), median (and min) over
the repeats; the process CPU time is printed beside the threaded runs, and the load average, because the
machine may be shared. Targets (issue 3): all 16 <= 0.1 s; per-slice volume <= 10 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MedFusionLib.metrics import METRIC_KEYS, METRICS, compute_metrics, score  # noqa: E402
from MedFusionLib.metrics._parallel import WORKERS  # noqa: E402
from MedFusionLib.metrics._stack import Stack  # noqa: E402
from MedFusionLib.metrics.registry import compute_stack  # noqa: E402
from MedFusionLib.metrics.volume3d import KEYS_3D, compute_3d  # noqa: E402

SHARED = Path(os.environ.get("MEDFUSION_SHARED", ROOT.parent / "shared"))


def load_triple(case: str, fused: str) -> tuple[list[np.ndarray], np.ndarray, str]:
    vectors = SHARED / "metrics" / "vectors"
    if (vectors / f"{case}_A.png").is_file():
        from PIL import Image

        def gray(name: str) -> np.ndarray:
            with Image.open(vectors / name) as im:
                a = np.asarray(im)
            if a.ndim == 3:
                a = np.floor(a[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114]) + 0.5)
            return a.astype(np.float64)

        srcs = [gray(f"{case}_A.png"), gray(f"{case}_B.png")]
        return srcs, gray(f"{case}_F_{fused}.png"), f"{case} (F_{fused}) from {vectors}"
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256]
    head = ((y - 128) ** 2 / 110**2 + (x - 128) ** 2 / 90**2) < 1
    a = np.where(head, 80 + 60 * np.sin(x / 9.0) + rng.normal(0, 12, (256, 256)), 0).clip(0, 255).round()
    b = np.where(head, 120 + 70 * np.cos(y / 13.0) + rng.normal(0, 12, (256, 256)), 0).clip(0, 255).round()
    return [a, b], np.floor((a + b) / 2 + 0.5), "generated 256x256 phantom (../shared absent)"


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and min wall-clock seconds over ``repeats`` calls."""
    return timed_cpu(fn, repeats)[:2]


def timed_cpu(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median and min wall-clock seconds, and median process CPU seconds (all threads), over ``repeats``."""
    times, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(times)), float(min(times)), float(np.median(cpu))


def make_volume(
    srcs: list[np.ndarray], fused: np.ndarray, depth: int, head: bool = False
) -> tuple[list[np.ndarray], np.ndarray]:
    """``depth`` slices of the triple, each shifted and with +-2 noise on its foreground.

    ``head=False``: every slice is the full section (the worst case for FMI). ``head=True``: each slice is
    cut to an ellipse that shrinks towards both ends like a head (the first and last ~7 % of the slices
    empty), the shape of a real brain volume.
    """
    rng = np.random.default_rng(1)
    shifts = [(int(round(6 * np.sin(k / 15))), int(round(6 * np.cos(k / 21)))) for k in range(depth)]
    h, w = fused.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2

    def stack(img: np.ndarray) -> np.ndarray:
        vol = np.stack([np.roll(img, s, axis=(0, 1)) for s in shifts])
        if head:
            z = (np.arange(depth) - (depth - 1) / 2) / (0.43 * depth)  # |z| > 1: no head
            scale = np.sqrt(np.clip(1 - z * z, 0, None))
            vol = vol * (r2[None] < scale[:, None, None] ** 2)
        return np.clip(vol + rng.integers(-2, 3, vol.shape) * (vol > 0), 0, 255)

    return [stack(s) for s in srcs], stack(fused)


def volume_verdict(seconds: float, shape: tuple[int, ...]) -> str:
    """The target is set for 256x256x200; other sizes get no verdict."""
    if shape != (200, 256, 256):
        return "n/a (the target is for 256x256x200)"
    return "meets" if seconds <= 10.0 else "MISSES"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--volume-repeats", type=int, default=3)
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--case", default="SPECT-MRI_10030")
    parser.add_argument("--fused", default="mean", choices=["mean", "max"])
    args = parser.parse_args()

    srcs, fused, label = load_triple(args.case, args.fused)
    print(f"# metrics benchmark: {label}")
    print(
        f"# python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"# wall-clock time.perf_counter, median (min) of {args.repeats} repeats\n")
    compute_metrics(srcs, fused)  # warm-up (imports, allocator)

    s3 = [s[None] for s in srcs]
    f3 = fused[None]
    print(f"{'metric':8s} {'median ms':>10s} {'min ms':>8s}  better")
    print(f"{'-' * 8} {'-' * 10} {'-' * 8}  ------")
    for key in METRIC_KEYS:
        kernel = METRICS[key].kernel
        med, low = timed(lambda: kernel(Stack(s3, f3)), args.repeats)  # fresh stack: no shared histograms
        print(f"{key:8s} {med * 1e3:10.2f} {low * 1e3:8.2f}  {METRICS[key].direction}")
    med, low = timed(lambda: compute_stack(Stack(s3, f3), METRIC_KEYS, parallel=False), args.repeats)
    print(f"{'all 16':8s} {med * 1e3:10.2f} {low * 1e3:8.2f}  one thread")
    med, low, cpu = timed_cpu(lambda: compute_metrics(srcs, fused), args.repeats)
    verdict = "meets" if med <= 0.1 else "MISSES"
    print(
        f"{'all 16':8s} {med * 1e3:10.2f} {low * 1e3:8.2f}  compute_metrics ({WORKERS} threads, CPU {cpu * 1e3:.0f} ms), target <= 100 ms: {verdict}"
    )

    vs, vf = make_volume(srcs, fused, args.depth)
    shape = "x".join(map(str, vf.shape[::-1]))
    med, low, cpu = timed_cpu(lambda: score(vs, vf, axis=0, rule="as-is", include_3d=False), args.volume_repeats)
    verdict = volume_verdict(med, vf.shape)
    print(
        f"\nvolume {shape} (x*y*z), per-slice along axis 0, 16 metrics, {args.volume_repeats} repeats, {WORKERS} threads:"
    )
    print(
        f"  per-slice protocol: median {med:.2f} s (min {low:.2f} s, CPU {cpu:.2f} s), {med / args.depth * 1e3:.1f} ms/slice, target <= 10 s: {verdict}"
    )
    med, low, cpu = timed_cpu(lambda: compute_3d(vs, vf, list(KEYS_3D)), 1)
    print(f"  3-D variants {' '.join(KEYS_3D)}: {med:.2f} s (CPU {cpu:.2f} s, one run)")
    hs, hf = make_volume(srcs, fused, args.depth, head=True)
    used = score(hs, hf, rule="as-is", include_3d=False, keys=["SD"])["protocol"]["slices_used"]
    med, low, cpu = timed_cpu(lambda: score(hs, hf, axis=0, rule="as-is", include_3d=False), args.volume_repeats)
    verdict = volume_verdict(med, hf.shape)
    print(
        f"  head-shaped volume ({used} of {args.depth} slices with foreground): median {med:.2f} s (min {low:.2f} s, CPU {cpu:.2f} s), target <= 10 s: {verdict}"
    )
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
