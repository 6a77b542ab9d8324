"""``medfusion study MANIFEST.csv OUTDIR``: every chosen method on every case; cases.csv, summary.csv (means,
95 % intervals, paired wins / ties / losses against a baseline) and a self-contained report.html."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from MedFusionLib.apps.cli.batch import files_written_since
from MedFusionLib.apps.cli.common import add_mode_options, add_register_option
from MedFusionLib.core.errors import MedFusionError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "study",
        help="run methods over a manifest: per-case metrics, summary with 95 %% CIs and wins vs a baseline, HTML report",
    )
    p.add_argument("manifest", metavar="MANIFEST.csv", help="columns a,b[,name][,group] (a group splits every table)")
    p.add_argument("outdir", metavar="OUTDIR")
    p.add_argument("--methods", default="all", help="comma-separated methods, or 'all' (default: all)")
    p.add_argument("--baseline", default="max", help="method the others are compared with (default: max)")
    add_mode_options(p)
    add_register_option(p)
    p.add_argument(
        "--workers", type=int, default=1, metavar="N", help="local worker processes (Dask engine; default 1)"
    )
    p.add_argument("--scheduler", metavar="ADDR", help="a Dask scheduler address (Dask engine)")
    p.set_defaults(func=run)


def executor(args: argparse.Namespace):
    """Where the (method, case) tasks run: this process for one worker and no scheduler, else the Dask engine
    (an embedded cluster of ``--workers`` processes, or the cluster at ``--scheduler``)."""
    from MedFusionLib.study.cohort import run_locally

    if args.workers < 1:
        raise MedFusionError(f"--workers must be at least 1, got {args.workers}")
    if args.scheduler and args.workers != 1:
        raise MedFusionError("--workers and --scheduler exclude each other (the cluster has its own workers)")
    if args.workers == 1 and not args.scheduler:
        return run_locally
    from MedFusionLib.study.engine import study_executor

    return study_executor(scheduler=args.scheduler, workers=None if args.scheduler else args.workers)


def study_interrupt_note(written: int, out_dir: Path) -> str:
    """What an interrupted study leaves behind (the line after ``medfusion: interrupted;``): a study does not
    resume, so its tables are written only at the end."""
    return (
        f"{written} fused file{'s' * (written != 1)} written under {out_dir}/<method>/; cases.csv, summary.csv and "
        "report.html were not written; rerun the same command to run the study again (it starts over)"
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from MedFusionLib.core.options import FusionOptions
    from MedFusionLib.study.cohort import run_study

    options = FusionOptions(mode=args.mode, axis=args.axis, registration=args.register, force_registration=args.force)
    out_dir = Path(args.outdir)
    with tqdm(desc="study", file=sys.stderr, unit="run", disable=None) as bar:
        started = time.time()
        args.interrupt_note = lambda: study_interrupt_note(
            files_written_since([p for p in out_dir.glob("*") if p.is_dir()], started), out_dir
        )

        def on_record(method, record, total):
            bar.total = total
            bar.update(1)
            if not record.ok:
                tqdm.write(f"medfusion: {method} failed on row {record.row}: {record.error}", file=sys.stderr)

        outcome = run_study(
            Path(args.manifest),
            out_dir,
            options,
            methods=args.methods,
            baseline=args.baseline,
            executor=executor(args),
            on_record=on_record,
        )
    print(f"{len(outcome.methods)} methods x {len(outcome.cases)} cases into {out_dir}")
    for row in outcome.summary:
        if row["group"] == "all":
            verdict = (
                "baseline" if row["method"] == outcome.baseline else f"{row['wins']}/{row['ties']}/{row['losses']}"
            )
            print(f"  {row['method']:<24} W/T/L {verdict:<9} {row['seconds_per_case']:.2f} s/case")
    for name in ("cases.csv", "summary.csv", "report.html"):
        print(f"{name}: {out_dir / name}")
    return 1 if outcome.failed else 0
