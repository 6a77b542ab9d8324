"""Speed and memory of the deep fusion methods against a yardstick with the published IFCNN's cost.

Usage (from the repository root; 2 CPU cores are the reference machine)::

    python benchmarks/fusion_speed_benchmark.py [--data ../shared/data] [--threads 2] [--skip-memory]

Measured in one run, best of ``--repeat`` timings each:

* one 256 x 256 slice pair (a real Harvard CT-MRI pair when ``../shared`` exists);
* one 256 x 256 x 200 volume pair (the SPM T1 and PET templates resampled to that grid; a phantom otherwise);
* the yardstick (``MedFusionLib/networks/ifcnn_reference.py``: 7x7 conv 3->64, 3x3 conv 64->64 per input,
  max, 3x3 conv 64->64, 1x1 conv 64->3; random weights; float32 as published) run slice by slice over the whole volume, as a user
  of the published network would, and also through our engine (cropping, skipping empty slices, batching) to
  separate what the engine gains from what the lighter network gains;
* our methods at the default precision (``auto``: bfloat16 autocast on CPUs with native bf16, else float32), and
  float32 against bfloat16 for the default method, with the largest difference of the outputs;
* peak resident memory (``ru_maxrss`` of a fresh subprocess, inputs included) when fusing a 512 x 512 x 400
  phantom pair in each mode.

``--porcine`` runs only the whole-command comparison (issue 15): the porcine CT (256 x 256 x 205) and its MR T2
resampled onto the CT grid by the header geometry (prepared once, not timed), then

* the yardstick's compute alone on the slices the command fuses (the engine's foreground crop, non-empty slices);
* ``medfusion fuse CT MR -o OUT.nii.gz --method M --output-type T --profile`` in a fresh process (``python -m
  MedFusionLib``), best of ``--repeat``, less the same measure of ``medfusion --help`` (the interpreter and the
  command's start-up), with the stage times ``--profile`` prints;

printed as a table: each command's time, its fraction of the yardstick's compute and its stages.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def phantom(shape, seed=0):
    """Two co-registered float32 volumes in 0..1: a head-like ellipsoid (MR-like) and hot spots (PET-like).

    Built slab by slab so that building them needs no more memory than the two volumes themselves (the memory
    measurement should see the fusion, not the phantom's temporaries).
    """
    d, h, w = shape
    a = np.empty(shape, np.float32)
    b = np.empty(shape, np.float32)
    y = np.linspace(-1, 1, h, dtype=np.float32)[None, :, None]
    x = np.linspace(-1, 1, w, dtype=np.float32)[None, None, :]
    texture = 0.35 + 0.3 * np.cos(6 * x) * np.sin(5 * y)
    for start in range(0, d, 16):
        z = np.linspace(-1, 1, d, dtype=np.float32)[start : start + 16, None, None]
        r2 = (z / 0.85) ** 2 + (y / 0.75) ** 2 + (x / 0.65) ** 2
        sa = np.where(r2 < 1, texture, 0) + np.where((r2 > 0.8) & (r2 < 1), 0.4, 0)
        sb = np.where(r2 < 0.7, 0.2, 0) + np.where(((z - 0.2) ** 2 + (y + 0.1) ** 2 + (x - 0.2) ** 2) < 0.04, 0.7, 0)
        a[start : start + 16] = np.clip(sa, 0, 1)
        b[start : start + 16] = np.clip(sb, 0, 1)
    return a, b


def real_volume(data: Path, shape=(200, 256, 256)):
    import SimpleITK as sitk

    from MedFusionLib.training.data import normalise_volume

    t1 = sitk.ReadImage(str(data / "volumes" / "spm" / "T1.nii.gz"), sitk.sitkFloat32)
    pet = sitk.ReadImage(str(data / "volumes" / "spm" / "PET.nii.gz"), sitk.sitkFloat32)
    size = (shape[2], shape[1], shape[0])
    spacing = [s * n / m for s, n, m in zip(t1.GetSpacing(), t1.GetSize(), size)]
    ref = sitk.Image(size, sitk.sitkFloat32)
    ref.SetSpacing(spacing)
    ref.SetOrigin(t1.GetOrigin())
    ref.SetDirection(t1.GetDirection())
    out = [
        normalise_volume(sitk.GetArrayFromImage(sitk.Resample(im, ref, sitk.Transform(), sitk.sitkLinear, 0.0)))
        for im in (t1, pet)
    ]
    return out[0], out[1]


def best_time(fn, repeat):
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def _register_yardstick():
    """The yardstick as a temporary method in this process only (never shipped), to time it through the engine."""
    import torch

    from MedFusionLib.fusion.registry import _REGISTRY, FusionMethod, register_method
    from MedFusionLib.inference.runtime import torch_threads
    from MedFusionLib.networks import IFCNNReference

    torch.manual_seed(0)
    net = IFCNNReference().eval()

    def fuse_slices(stack):  # float32, as published
        out = np.empty(stack.shape[1:], np.float32)
        with torch_threads(), torch.inference_mode():
            for s in range(0, stack.shape[1], 8):
                out[s : s + 8] = (
                    net(torch.from_numpy(np.ascontiguousarray(stack[:, s : s + 8])).unsqueeze(2))[:, 0]
                    .clamp(0, 1)
                    .numpy()
                )
        return out

    if "yardstick" not in _REGISTRY:
        register_method(
            FusionMethod(
                name="yardstick", family="cnn", description="benchmark only", fuse_slices=fuse_slices, inputs="n"
            )
        )
    return net


def yardstick_naive(net, a, b):
    """The published network slice by slice over the whole volume (no crop, no skip), batches of 8."""
    import torch

    from MedFusionLib.inference.runtime import torch_threads

    out = np.empty_like(a)
    with torch_threads(), torch.inference_mode():
        for s in range(0, a.shape[0], 8):
            x = torch.from_numpy(np.stack([a[s : s + 8], b[s : s + 8]])).unsqueeze(2)
            out[s : s + 8] = net(x)[:, 0].clamp(0, 1).numpy()
    return out


def memory_child(mode: str, method: str, shape) -> None:
    from MedFusionLib.fusion import fuse_arrays

    a, b = phantom(shape)
    t = time.perf_counter()
    fused = fuse_arrays([a, b], method, mode=mode)
    seconds = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "peak_gb": peak_kb / 1024**2,
                "seconds": seconds,
                "inputs_gb": 2 * a.nbytes / 1024**3,
                "ok": bool(np.isfinite(fused).all()),
            }
        )
    )


def _prepare_porcine(data: Path, folder: Path):
    import SimpleITK as sitk

    porcine = data / "volumes" / "porcine"
    ct = sitk.ReadImage(str(porcine / "ct.nii.gz"))
    mr = sitk.ReadImage(str(porcine / "mr_t2.nii.gz"))
    mr_on_ct = sitk.Resample(mr, ct, sitk.Transform(), sitk.sitkLinear, 0.0, mr.GetPixelID())
    folder.mkdir(parents=True, exist_ok=True)
    paths = (folder / "ct.nii.gz", folder / "mr_on_ct.nii.gz")
    sitk.WriteImage(ct, str(paths[0]), True)
    sitk.WriteImage(mr_on_ct, str(paths[1]), True)
    return paths


PEAK_SCRIPT = (
    "import resource, runpy, sys\n"
    "sys.argv = ['medfusion'] + sys.argv[1:]\n"
    "try:\n    runpy.run_module('MedFusionLib', run_name='__main__')\n"
    "finally:\n    print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def _fresh_seconds(argv: list[str], threads: int, repeat: int) -> tuple[float, str, float]:
    """Best wall time of the ``medfusion ARGV`` command (``python -m MedFusionLib``) in a fresh process
    (interpreter start included), the stderr of the best run (where ``--profile`` prints the stages), and the
    process's peak resident memory in GB."""
    env = dict(os.environ, MEDFUSION_THREADS=str(threads), MEDFUSION_PROGRESS_SECONDS="1e9")
    best, stderr, peak = float("inf"), "", 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, *argv], capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t
        if res.returncode != 0:
            raise RuntimeError(f"medfusion {' '.join(argv)} failed: {res.stderr.strip()[-500:]}")
        peak_kb = [int(ln.split()[1]) for ln in res.stderr.splitlines() if ln.startswith("PEAK_KB")][-1]
        if seconds < best:
            best, stderr, peak = seconds, res.stderr, peak_kb / 1024**2
    return best, stderr, peak


def _stages(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("medfusion: profile:")]
    return lines[-1].removeprefix("medfusion: profile: ") if lines else ""


def porcine_command(data: Path, methods, repeat: int, threads: int, folder: Path) -> int:
    """Whole ``medfusion fuse`` runs on the porcine pair, each in a fresh process less ``medfusion --help``'s
    start-up, against the yardstick's compute on the same slices, measured in the same run."""
    from MedFusionLib.core.imageio import read_image
    from MedFusionLib.core.resources import estimate_run_bytes, image_info
    from MedFusionLib.fusion import fuse_arrays
    from MedFusionLib.fusion.engine import foreground_box
    from MedFusionLib.pipeline import prepare_inputs

    load_before = os.getloadavg()[0]
    ct_path, mr_path = _prepare_porcine(data, folder)
    prepared = prepare_inputs([read_image(ct_path), read_image(mr_path)])
    sources = prepared.sources01
    stack = np.stack(sources)
    box = foreground_box(stack)
    fused_slices = int(((stack[(slice(None),) + box] > 0.02).any(axis=(0, 2, 3))).sum())
    _register_yardstick()
    fuse_arrays([s[:2] for s in sources], "yardstick")  # warm up
    t_yard, _ = best_time(lambda: fuse_arrays(sources, "yardstick", "slice", 0), 1)
    t_help, _, _ = _fresh_seconds(["--help"], threads, repeat)
    estimate = estimate_run_bytes([image_info(ct_path), image_info(mr_path)]) / 1024**3
    rows = []
    for method, out_type in methods:
        out = folder / f"fused-{method}-{out_type}.nii.gz"
        argv = ["fuse", str(ct_path), str(mr_path), "-o", str(out), "--method", method, "--output-type", out_type]
        t_fresh, stderr, peak = _fresh_seconds(argv + ["--profile"], threads, repeat)
        rows.append((method, out_type, t_fresh, t_fresh - t_help, _stages(stderr), out.stat().st_size, peak))
    load_after = os.getloadavg()[0]
    print(
        f"# Whole command, porcine CT 256x256x205 + MR T2 on the CT grid (header geometry), slice mode, no "
        f"registration; {threads} threads, {os.cpu_count()} CPUs visible, load average {load_before:.1f} before "
        f"and {load_after:.1f} after; best of {repeat} fresh processes each"
    )
    print(
        f"yardstick (IFCNN cost, torch float32) compute alone on the same {fused_slices} non-empty slices of the "
        f"{tuple(b.stop - b.start for b in box)} foreground box: {t_yard:.2f} s; `medfusion --help` in a fresh "
        f"process: {t_help:.2f} s; the resource guard's estimate for this pair: {estimate:.2f} GB\n"
    )
    print(
        "| command | output | fresh process (s) | less --help start-up (s) | fraction of yardstick | stages (--profile) "
        "| size (MB) | peak memory (GB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for method, out_type, t_fresh, t_net, stages, size, peak in rows:
        print(
            f"| medfusion fuse --method {method} | {out_type} .nii.gz | {t_fresh:.2f} | {t_net:.2f} | "
            f"1/{t_yard / t_net:.1f} | {stages} | {size / 1e6:.1f} | {peak:.2f} |"
        )
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--porcine", action="store_true", help="only the whole-command comparison on the porcine pair")
    p.add_argument(
        "--porcine-methods",
        default="max:uint8,fusion-unet:float32,fusion-unet:uint8",
        help="METHOD:OUTPUT_TYPE list for --porcine (before: the old default, float32; after: the new one)",
    )
    p.add_argument(
        "--memory-methods",
        default="fusion-unet:slice,fusion-unet:volume,max-residual-cnn:slice",
        help="METHOD:MODE list for the 512x512x400 memory check",
    )
    p.add_argument("--memory-child", nargs=3, metavar=("MODE", "METHOD", "SHAPE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ["MEDFUSION_THREADS"] = str(args.threads)
    if args.memory_child:
        mode, method, shape = args.memory_child
        memory_child(mode, method, tuple(int(v) for v in shape.split("x")))
        return 0

    import torch

    from MedFusionLib.fusion import default_method_name, fuse_arrays
    from MedFusionLib.fusion.consistency import through_plane_consistency

    default_name = default_method_name()

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    if args.porcine:
        pairs = [tuple(item.split(":")) for item in args.porcine_methods.split(",")]
        return porcine_command(data, pairs, args.repeat, args.threads, ROOT / "out" / "speed")
    have_data = (data / "harvard").is_dir() and (data / "volumes").is_dir()
    if have_data:
        from MedFusionLib.training.data import read_gray

        sa = (
            read_gray(data / "harvard" / "CT-MRI" / "CT" / "2004.png") / 255.0
            if (data / "harvard/CT-MRI/CT/2004.png").exists()
            else None
        )
        sb = read_gray(data / "harvard" / "CT-MRI" / "MRI" / "2004.png") / 255.0 if sa is not None else None
        va, vb = real_volume(data)
        source = "Harvard CT-MRI 2004 / SPM T1 + PET resampled to 200x256x256"
    else:
        sa = None
        va, vb = phantom((200, 256, 256))
        source = "phantom"
    if sa is None:
        sa, sb = va[100], vb[100]
    sa, sb = sa.astype(np.float32), sb.astype(np.float32)
    net = _register_yardstick()
    from MedFusionLib.fusion import available_methods

    deep = [m.name for m in available_methods() if m.family != "classical" and m.accepts(2) and m.name != "yardstick"]
    for name in deep:  # load weights once, outside the timings
        fuse_arrays([sa, sb], name)

    rows = []

    def add(label, seconds_slice, seconds_volume, note=""):
        rows.append((label, seconds_slice, seconds_volume, note))

    t_slice_y, _ = best_time(lambda: fuse_arrays([sa, sb], "yardstick"), args.repeat)
    t_vol_naive, _ = best_time(lambda: yardstick_naive(net, va, vb), 1)
    t_vol_y, _ = best_time(lambda: fuse_arrays([va, vb], "yardstick", mode="slice"), 1)
    add("yardstick (IFCNN cost), whole volume slice by slice", t_slice_y, t_vol_naive, "reference for the speed-up")
    add("yardstick through our engine (crop, skip, batch)", t_slice_y, t_vol_y, "")
    results = {}
    for name, mode in [(n, m) for n in deep for m in ("slice", "volume")] + [("max", "slice")]:
        t_s, _ = (
            best_time(lambda: fuse_arrays([sa, sb], name), args.repeat) if mode == "slice" else (float("nan"), None)
        )
        t_v, fused = best_time(
            lambda: fuse_arrays([va, vb], name, mode=mode), args.repeat if name == default_name else 1
        )
        cons = through_plane_consistency(fused, [va, vb], axis=0)
        results[(name, mode)] = fused
        add(
            f"{name} ({mode} mode)",
            t_s,
            t_v,
            f"through-plane ratio {cons['ratio']:.3f}, anisotropy {cons['anisotropy']:.3f}",
        )

    from MedFusionLib.inference.runtime import precision

    default_precision = precision()
    prec = []
    for mode in ("slice", "volume"):
        times = {}
        for value in ("float32", "bfloat16"):
            os.environ["MEDFUSION_PRECISION"] = value
            times[value], times[value + "_out"] = best_time(
                lambda: fuse_arrays([va, vb], default_name, mode=mode), args.repeat
            )
        diff = float(np.abs(times["float32_out"] - times["bfloat16_out"]).max() * 255)
        prec.append((mode, times["bfloat16"], times["float32"], diff))
    os.environ.pop("MEDFUSION_PRECISION")

    print(
        f"# Fusion speed, {args.threads} torch threads, {os.cpu_count()} CPUs visible; precision {default_precision} (auto); data: {source}"
    )
    print("| method | s per 256x256 slice pair | s per 256x256x200 volume | speed-up vs yardstick (volume) | note |")
    print("|---|---|---|---|---|")
    for label, ts, tv, note in rows:
        speed = t_vol_naive / tv
        ts_txt = "-" if ts != ts else f"{ts:.4f}"
        print(f"| {label} | {ts_txt} | {tv:.2f} | {speed:.1f}x | {note} |")
    print(
        f"\n| {default_name} precision | s per volume, bfloat16 | s per volume, float32 | max |difference| (grey levels) |"
    )
    print("|---|---|---|---|")
    for mode, t_bf, t_32, diff in prec:
        print(f"| {mode} mode | {t_bf:.2f} | {t_32:.2f} | {diff:.2f} |")

    if not args.skip_memory:
        print("\n| peak memory, 512x512x400 phantom pair (float32 inputs 0.78 GB included) | peak RSS GB | seconds |")
        print("|---|---|---|")
        for method, mode in [tuple(item.split(":")) for item in args.memory_methods.split(",")]:
            cmd = [
                sys.executable,
                __file__,
                "--threads",
                str(args.threads),
                "--memory-child",
                mode,
                method,
                "400x512x512",
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            res = json.loads(out)
            print(f"| {method} ({mode} mode) | {res['peak_gb']:.2f} | {res['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
