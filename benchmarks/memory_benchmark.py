"""Peak memory of ``medfusion fuse`` on a 512 x 512 x 400 pair, against the resource guard's estimate (issue 21).

Usage (from the repository root)::

    MEDFUSION_THREADS=1 python benchmarks/memory_benchmark.py [--data ../shared/data] [--mode slice|volume ...]
        [--method M] [--folder DIR]

The pair: the porcine CT (``volumes/porcine/ct.nii.gz``) and its MR T2 resampled by the header geometry onto the
CT's extent at 512 x 512 x 400 voxels (linear interpolation, the CT's pixel type kept: real anatomy, background
and all, as a large clinical scan has them); a smooth CT-like / MR-like phantom when ``../shared`` is absent. Both
are written uncompressed (``.nii``) once into ``--folder`` (default: a temporary folder) and reused.

Each mode runs ``python -m MedFusionLib fuse CT MR -o OUT.nii.gz --mode MODE --register none`` (default method)
in a fresh process. Its peak resident memory is the larger of the kernel's ``ru_maxrss`` of that process
(``os.wait4``) and the largest sum of resident memory over its process tree polled every 50 ms (psutil), which
catches memory held by children. The guard's estimate is ``core/resources.estimate_run_bytes`` on the two files'
headers, what ``medfusion fuse`` checks before reading. Prints one table row per mode.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = (512, 512, 400)  # x, y, z (ITK order)


def _resample(image: sitk.Image, reference: sitk.Image, pixel: int) -> sitk.Image:
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, pixel)


def _reference(ct: sitk.Image, size: tuple[int, ...]) -> sitk.Image:
    """A ``size`` grid (512 x 512 x 400 by default) over the CT's physical extent."""
    spacing = [sp * n / m for sp, n, m in zip(ct.GetSpacing(), ct.GetSize(), size)]
    grid = sitk.Image(list(size), ct.GetPixelID())
    grid.SetSpacing(spacing)
    grid.SetDirection(ct.GetDirection())
    origin_index = [0.5 * (m / n) - 0.5 for n, m in zip(size, ct.GetSize())]  # same corners as the CT
    grid.SetOrigin(ct.TransformContinuousIndexToPhysicalPoint(origin_index))
    return grid


def _phantom_pair(size: tuple[int, ...]) -> tuple[sitk.Image, sitk.Image]:
    """Smooth CT-like (bone ring, soft tissue) and MR-like (soft-tissue contrast) volumes, int16."""
    z, y, x = np.ogrid[-1 : 1 : size[2] * 1j, -1 : 1 : size[1] * 1j, -1 : 1 : size[0] * 1j]
    r = np.sqrt(x * x + y * y + 0.5 * z * z)
    ct = np.where(r < 0.8, 40, -1000) + np.where((r > 0.7) & (r < 0.8), 1200, 0)
    mr = np.where(r < 0.7, 300 + 200 * np.cos(6 * x) * np.sin(5 * y), 0) * (r < 0.8)
    return sitk.GetImageFromArray(ct.astype(np.int16)), sitk.GetImageFromArray(mr.astype(np.int16))


def prepare(data: Path, folder: Path, size: tuple[int, ...] = SIZE) -> tuple[Path, Path]:
    """The pair of ``size`` in ``folder`` (written once)."""
    tag = "x".join(map(str, size))
    ct_file, mr_file = folder / f"ct-{tag}.nii", folder / f"mr-{tag}.nii"
    if ct_file.is_file() and mr_file.is_file():
        return ct_file, mr_file
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(os.environ.get("MEDFUSION_THREADS", "1")))
    porcine = data / "volumes" / "porcine"
    if (porcine / "ct.nii.gz").is_file():
        ct = sitk.ReadImage(str(porcine / "ct.nii.gz"))
        reference = _reference(ct, size)
        big_ct = _resample(ct, reference, ct.GetPixelID())
        big_mr = _resample(sitk.ReadImage(str(porcine / "mr_t2.nii.gz")), reference, ct.GetPixelID())
    else:
        big_ct, big_mr = _phantom_pair(size)
    folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(big_ct, str(ct_file), useCompression=False)
    sitk.WriteImage(big_mr, str(mr_file), useCompression=False)
    return ct_file, mr_file


def _poll_tree(pid: int, peak: list[int], done: threading.Event) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not done.is_set():
        try:
            total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            total = 0
        peak[0] = max(peak[0], total)
        time.sleep(0.05)


def run_mode(ct: Path, mr: Path, mode: str, method: str | None, out: Path) -> dict:
    """One fresh ``medfusion fuse`` process: its peak RSS (bytes), wall seconds and exit code."""
    argv = [sys.executable, "-m", "MedFusionLib", "fuse", str(ct), str(mr), "-o", str(out), "--mode", mode]
    argv += ["--register", "none"] + (["--method", method] if method else [])
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, done = [0], threading.Event()
    poller = threading.Thread(target=_poll_tree, args=(child.pid, peak, done), daemon=True)
    poller.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    poller.join()
    err = child.stderr.read().decode(errors="replace") if child.stderr else ""
    child.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": child.returncode, "peak": max(usage.ru_maxrss * 1024, peak[0]), "wall": wall, "stderr": err}


def guard_estimate(ct: Path, mr: Path) -> int:
    from MedFusionLib.core.resources import estimate_run_bytes, image_info

    infos = [image_info(ct), image_info(mr)]
    if infos[0] is None or infos[1] is None:
        raise SystemExit("benchmark: cannot read the pair's headers")
    return estimate_run_bytes([infos[0], infos[1]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--mode", nargs="+", default=["slice", "volume"], choices=["slice", "volume"])
    parser.add_argument("--method", default=None, help="default: the default method")
    parser.add_argument("--folder", type=Path, default=None, help="where the pair is written (and reused)")
    parser.add_argument("--size", type=int, nargs=3, default=SIZE, metavar=("X", "Y", "Z"), help="default 512 512 400")
    args = parser.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="medfusion-memory-"))
    size = tuple(args.size)
    ct, mr = prepare(args.data, folder, size)
    estimate = guard_estimate(ct, mr)
    load = os.getloadavg()[0]
    print(f"pair: {ct} + {mr} ({'x'.join(map(str, size))}); load average {load:.1f}", flush=True)
    print("| mode | peak MB | guard estimate MB | estimate / peak | wall s |")
    print("|---|---|---|---|---|")
    for mode in args.mode:
        result = run_mode(ct, mr, mode, args.method, folder / f"fused-{mode}.nii.gz")
        if result["rc"] != 0:
            print(f"| {mode} | failed (exit {result['rc']}): {result['stderr'].strip()[-300:]} | | | |", flush=True)
            continue
        peak = result["peak"]
        row = f"| {mode} | {peak / 1e6:.0f} | {estimate / 1e6:.0f} | {estimate / peak:.2f} | {result['wall']:.1f} |"
        print(row, flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
