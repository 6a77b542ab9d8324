"""Rows per minute of ``medfusion batch``: in this process one row after another (the sequential path) against
an embedded Dask LocalCluster of 1 and 2 worker processes, on real data.

Usage (from the repository root; 2 CPU cores are the reference machine)::

    python benchmarks/cohort_benchmark.py [--data ../shared/data] [--pairs 200] [--volumes 10] [--method NAME]

* Harvard: ``--pairs`` 2-D pairs (256 x 256 PNG), taken in turn from CT-MRI, PET-MRI and SPECT-MRI (MRI is the
  reference), default method, slice mode, no registration;
* SPM: ``--volumes`` 3-D pairs of the SPM templates (91 x 109 x 91, 2 mm; all aligned by construction), an
  anatomical reference with a second template, slice mode, no registration.

Each configuration starts from an empty OUTDIR and is timed from start to ``metrics.csv`` written, cluster
start-up and shut-down included (what a user waits for); the start-up alone is shown too. Torch threads: the
sequential path and a 1-worker cluster use every CPU (``$MEDFUSION_THREADS`` unset), 2 workers use CPUs // 2 each.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MedFusionLib.core.options import FusionOptions
from MedFusionLib.study.manifest import read_manifest
from MedFusionLib.study.runner import plan_cases, run_plan

SPM_PAIRS = [
    ("T1", "PET"),
    ("T1", "SPECT"),
    ("T2", "PET"),
    ("T2", "SPECT"),
    ("PD", "PET"),
    ("PD", "SPECT"),
    ("T1", "T2"),
    ("T1", "PD"),
    ("single_subj_T1", "PET"),
    ("EPI", "Transm"),
]


def harvard_manifest(data: Path, pairs: int, folder: Path) -> Path:
    sets = []
    for kind, other in (("CT-MRI", "CT"), ("PET-MRI", "PET"), ("SPECT-MRI", "SPECT")):
        base = data / "harvard" / kind
        files = sorted((base / other).glob("*.png")) if (base / other).is_dir() else []
        sets.append(
            [(base / "MRI" / f.name, f, f"{other}-{f.stem}") for f in files if (base / "MRI" / f.name).exists()]
        )
    rows = [row for row in itertools.chain.from_iterable(itertools.zip_longest(*sets)) if row][:pairs]
    if len(rows) < pairs:
        raise SystemExit(f"only {len(rows)} Harvard pairs under {data / 'harvard'}")
    path = folder / "harvard.csv"
    path.write_text("a,b,name\n" + "".join(f"{a},{b},{name}\n" for a, b, name in rows))
    return path


def spm_manifest(data: Path, volumes: int, folder: Path) -> Path:
    spm = data / "volumes" / "spm"
    rows = [(spm / f"{a}.nii.gz", spm / f"{b}.nii.gz", f"{a}-{b}") for a, b in SPM_PAIRS][:volumes]
    missing = [str(p) for a, b, _ in rows for p in (a, b) if not p.exists()]
    if missing:
        raise SystemExit(f"missing SPM templates: {', '.join(missing)}")
    path = folder / "spm.csv"
    path.write_text("a,b,name\n" + "".join(f"{a},{b},{name}\n" for a, b, name in rows))
    return path


def run_config(manifest: Path, out: Path, options: FusionOptions, workers: int) -> tuple[float, float, int, float]:
    """(wall seconds, cluster start-up seconds, rows succeeded, median seconds of one row inside its task) of one
    configuration from an empty OUTDIR. The median row time separates Dask's overhead (wall time beyond
    rows x row time / workers) from the rows' own speed (which falls when other processes share the cores)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    plan = plan_cases(read_manifest(manifest), out, options)
    if workers == 0:
        outcome, startup = run_plan(plan, out, options), 0.0
    else:
        from MedFusionLib.study.engine import cohort_client, run_plan_on

        with cohort_client(workers=workers) as client:
            client.wait_for_workers(workers, timeout=300)
            startup = time.perf_counter() - started
            outcome = run_plan_on(client, plan, out, options)
    row_seconds = statistics.median(r.seconds for r in outcome.succeeded) if outcome.succeeded else float("nan")
    return time.perf_counter() - started, startup, len(outcome.succeeded), row_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--pairs", type=int, default=200, help="Harvard 2-D pairs (default 200)")
    parser.add_argument("--volumes", type=int, default=10, help="SPM volume pairs (default 10, at most 10)")
    parser.add_argument("--method", default=None, help="fusion method (default: the default method)")
    parser.add_argument("--workers", default="0,1,2", help="configurations: 0 = sequential, N = N workers")
    args = parser.parse_args()
    os.environ.pop("MEDFUSION_THREADS", None)
    options = FusionOptions(method=args.method)
    configs = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sets = []
        if args.pairs:
            sets.append(("Harvard 2-D", harvard_manifest(args.data, args.pairs, folder), args.pairs))
        if args.volumes:
            sets.append(("SPM 3-D", spm_manifest(args.data, args.volumes, folder), min(args.volumes, 10)))
        print(f"CPUs: {len(os.sched_getaffinity(0))}; load average at start: {os.getloadavg()[0]:.1f}")
        print(
            "| data | rows | configuration | wall (s) | cluster start (s) | median row (s) | rows/min | speed-up | load |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for label, manifest, rows in sets:
            baseline = None
            for workers in configs:
                wall, startup, ok, row = run_config(manifest, folder / "out", options, workers)
                rate = 60.0 * ok / wall
                baseline = baseline or rate
                name = "sequential (in process)" if workers == 0 else f"embedded, {workers} worker{'s' * (workers > 1)}"
                print(
                    f"| {label} | {ok}/{rows} | {name} | {wall:.1f} | {startup:.1f} | {row:.2f} | {rate:.1f} | "
                    f"{rate / baseline:.2f}x | {os.getloadavg()[0]:.1f} |",
                    flush=True,
                )
        print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
