"""``medfusion batch MANIFEST.csv OUTDIR``: fuse every row of a manifest, each row a task on Dask distributed.

``--scheduler ADDRESS`` uses an existing cluster; otherwise an embedded LocalCluster of ``--workers N`` processes
runs the rows (``--workers 0``: in this process, one row after another, no Dask). Rows whose output and resume
record are complete are skipped (``--overwrite`` redoes them); see docs/cohorts.md.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from MedFusionLib.apps.cli.common import add_fusion_options, fusion_options
from MedFusionLib.core.errors import MedFusionError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="fuse every row of a CSV manifest (columns a,b[,name]), on Dask; resumable",
        description="Fuse every row of a CSV manifest (columns a,b[,name]) into OUTDIR, each row a Dask task. "
        "A rerun skips the rows already done.",
    )
    p.add_argument("manifest", metavar="MANIFEST.csv")
    p.add_argument("outdir", metavar="OUTDIR")
    add_fusion_options(p)
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing Dask cluster (e.g. tcp://host:8786); its workers must see MANIFEST's inputs and "
        "OUTDIR at the same paths",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes of the embedded cluster (default: one per CPU, at most 16); 0: run in this process, "
        "one row after another",
    )
    p.add_argument("--overwrite", action="store_true", help="redo rows already done by an earlier run")
    p.set_defaults(func=run)


def files_written_since(folders: list[Path], started: float, pattern: str = "*") -> int:
    """How many files matching ``pattern`` in ``folders`` were written at or after ``started`` (epoch seconds):
    what this run finished, counted on disk (the outputs are renamed into place whole, records last)."""
    return sum(
        1
        for folder in folders
        if folder.is_dir()
        for path in folder.glob(pattern)
        if not path.name.startswith(".") and path.is_file() and path.stat().st_mtime >= started
    )


def batch_interrupt_note(fused: int, earlier: int, out_dir: Path) -> str:
    """What an interrupted batch leaves behind, and how to go on (the line after ``medfusion: interrupted;``)."""
    return (
        f"{fused} new row{'s' * (fused != 1)} fused into {out_dir} with their resume records "
        f"({earlier} done by an earlier run); metrics.csv was not updated; rerun the same command to resume "
        "(rows already done are skipped)"
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from MedFusionLib.study.manifest import read_manifest
    from MedFusionLib.study.runner import plan_cases, run_plan

    if args.scheduler and args.workers is not None:
        raise MedFusionError("--workers sizes the embedded cluster; leave it out with --scheduler")
    if args.workers is not None and args.workers < 0:
        raise MedFusionError(f"--workers must be 0 or more, not {args.workers}")
    options = fusion_options(args)
    cases = read_manifest(Path(args.manifest))
    out_dir = Path(args.outdir).absolute()
    plan = plan_cases(cases, out_dir, options, overwrite=args.overwrite)
    counts = {"ok": 0, "failed": 0}
    with contextlib.ExitStack() as stack:
        client = None
        if plan.todo and (args.scheduler or args.workers != 0):  # connect first: its error is one line
            from MedFusionLib.study.engine import cohort_client, dashboard_link

            client = stack.enter_context(cohort_client(args.scheduler, args.workers))
            link = dashboard_link(client)
            if link:
                print(f"medfusion: Dask dashboard: {link}", file=sys.stderr)
        out_dir.mkdir(parents=True, exist_ok=True)  # after connecting: an unreachable cluster leaves nothing
        for case in cases:
            if case.note:
                print(f"medfusion: row {case.row}: {case.note}", file=sys.stderr)
        bar = stack.enter_context(
            tqdm(
                desc="batch", total=len(cases), initial=len(plan.done), file=sys.stderr, unit="row", dynamic_ncols=True
            )
        )
        bar.set_postfix(done=len(plan.done), failed=0, refresh=False)

        started = time.time()
        args.interrupt_note = lambda: batch_interrupt_note(
            files_written_since([out_dir / ".medfusion"], started, "*.json"), len(plan.done), out_dir
        )

        def on_record(record, total):
            counts["ok" if record.ok else "failed"] += 1
            bar.set_postfix(done=len(plan.done) + counts["ok"], failed=counts["failed"], refresh=False)
            bar.update(1)
            if not record.ok:
                tqdm.write(f"medfusion: row {record.row} ({record.name}) failed: {record.error}", file=sys.stderr)

        if client is None:  # --workers 0, or nothing left to run (then no cluster is started at all)
            outcome = run_plan(plan, out_dir, options, on_record=on_record)
        else:
            from MedFusionLib.study.engine import run_plan_on

            outcome = run_plan_on(client, plan, out_dir, options, on_record=on_record)
    resumed = sum(r.resumed for r in outcome.records)
    print(
        f"{len(outcome.succeeded)}/{len(outcome.records)} rows fused into {out_dir} "
        f"({resumed} already done, {len(outcome.failed)} failed); metrics: {out_dir / 'metrics.csv'}"
    )
    for record in outcome.failed:
        print(f"failed: row {record.row} ({record.name}): {record.error}")
    return 1 if outcome.failed else 0
