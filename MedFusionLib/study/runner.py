"""The many-case runner: one record per case, shared by ``batch``, ``study`` and (later) the Dask engine.

:func:`run_case` is a pure function of one case and the options (no shared state), so it can run in this
process, in a pool or as a distributed task; :func:`run_batch` runs a manifest through it in order and writes
``metrics.csv`` for the cases that succeeded.
"""

from __future__ import annotations

import csv
import io as text_io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.options import FusionOptions
from MedFusionLib.study.manifest import Case, case_output, read_manifest


@dataclass
class CaseRecord:
    """What one case gave: its output and metrics, or the one-line reason it failed."""

    row: int
    name: str
    output: str = ""
    metrics: dict = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0
    group: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class BatchOutcome:
    """All records of a run, in manifest order."""

    records: list[CaseRecord]

    @property
    def succeeded(self) -> list[CaseRecord]:
        return [r for r in self.records if r.ok]

    @property
    def failed(self) -> list[CaseRecord]:
        return [r for r in self.records if not r.ok]


def run_case(case: Case, out_dir: Path, options: FusionOptions) -> CaseRecord:
    """Fuse one case into ``out_dir`` and score it; a user error becomes the record's ``error``."""
    from MedFusionLib.pipeline.files import fuse_files

    started = time.perf_counter()
    record = CaseRecord(case.row, case.name, group=case.group)
    try:
        if case.error:
            raise MedFusionError(case.error)
        output = case_output(out_dir, case)
        _, metrics = fuse_files(list(case.inputs), str(output), options, want_metrics=True)
        record.output, record.metrics = str(output), metrics or {}
    except MedFusionError as err:
        record.error = str(err)
    record.seconds = time.perf_counter() - started
    return record


def write_metrics_csv(path: Path, records: Sequence[CaseRecord], keys: Sequence[str]) -> None:
    """``case`` plus the metric keys (then any extra scalar keys) for each successful record, atomically."""
    from MedFusionLib.core.imageio import write_atomically

    columns = ["case"] + list(keys)
    for record in records:
        columns += [k for k in record.metrics if k not in columns and k != "protocol"]
    buffer = text_io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for record in records:
        writer.writerow(
            [record.name] + [f"{record.metrics[k]:.6g}" if k in record.metrics else "" for k in columns[1:]]
        )
    write_atomically(Path(path), lambda tmp: Path(tmp).write_text(buffer.getvalue()))


def run_batch(
    manifest: Path, out_dir: Path, options: FusionOptions, on_record: Callable[[CaseRecord, int], None] | None = None
) -> BatchOutcome:
    """Fuse every case of ``manifest`` into ``out_dir`` one after another; ``metrics.csv`` for the successes."""
    from MedFusionLib.metrics import METRIC_KEYS

    cases = read_manifest(manifest)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for case in cases:
        record = run_case(case, out_dir, options)
        records.append(record)
        if on_record is not None:
            on_record(record, len(cases))
    outcome = BatchOutcome(records)
    write_metrics_csv(out_dir / "metrics.csv", outcome.succeeded, METRIC_KEYS)
    return outcome
