"""``medfusion batch MANIFEST.csv OUTDIR``: fuse every row of a manifest (the many-case runner of ``study``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from MedFusionLib.apps.cli.common import add_fusion_options, fusion_options


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="fuse every row of a CSV manifest (columns a,b[,name])")
    p.add_argument("manifest", metavar="MANIFEST.csv")
    p.add_argument("outdir", metavar="OUTDIR")
    add_fusion_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from MedFusionLib.study.runner import run_batch

    out_dir = Path(args.outdir)
    with tqdm(desc="batch", file=sys.stderr, unit="case") as bar:

        def on_record(record, total):
            bar.total = total
            bar.update(1)
            if not record.ok:
                tqdm.write(f"medfusion: skipped row {record.row}: {record.error}", file=sys.stderr)

        outcome = run_batch(Path(args.manifest), out_dir, fusion_options(args), on_record=on_record)
    print(
        f"{len(outcome.succeeded)}/{len(outcome.records)} cases fused into {out_dir}; "
        f"metrics: {out_dir / 'metrics.csv'}"
    )
    for record in outcome.failed:
        print(f"failed: row {record.row}: {record.error}")
    return 1 if outcome.failed else 0
