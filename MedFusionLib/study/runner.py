"""The many-case runner: one record per case, shared by ``batch``, ``study`` and the Dask engine.

:func:`run_case` is a pure function of one case and the options (no shared state), so it can run in this
process, in a pool or as a distributed task; :func:`run_recorded_case` adds the resume record
(:mod:`MedFusionLib.study.resume`) after the output; :func:`plan_cases` splits a manifest into rows already done
and rows to run; :func:`run_batch` runs a manifest in this process, one row after another (``--workers 0``), and
writes ``metrics.csv`` for the cases that succeeded. :mod:`MedFusionLib.study.engine` runs the same rows on Dask.
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
from MedFusionLib.study.manifest import Case, case_output, read_manifest, refuse_input_clashes


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
    resumed: bool = False  # done by an earlier run (its resume record and output were intact)

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


def run_recorded_case(case: Case, out_dir: Path, options: FusionOptions, key: str) -> CaseRecord:
    """:func:`run_case`, then the resume record (written after the output, so a crash in between means "redo")."""
    from MedFusionLib.study.resume import write_record

    record = run_case(case, out_dir, options)
    if record.ok:
        try:
            write_record(out_dir, case, key, Path(record.output), record.metrics, record.seconds)
        except OSError as err:
            record.error = f"{record.output}: cannot write its resume record: {err}"
    return record


@dataclass
class Plan:
    """A manifest split for a run: records of rows already done, and (case, key) of the rows to run."""

    cases: list[Case]
    done: dict[int, CaseRecord]
    todo: list[tuple[Case, str]]


def plan_cases(cases: Sequence[Case], out_dir: Path, options: FusionOptions, overwrite: bool = False) -> Plan:
    """Which rows to run: all of them with ``overwrite``, else those without a complete, matching record."""
    from MedFusionLib.study.resume import completed_record, row_key

    cases = refuse_input_clashes(cases, lambda case: [case_output(out_dir, case)], [Path(out_dir) / "metrics.csv"])
    done: dict[int, CaseRecord] = {}
    todo = []
    for case in cases:
        key = "" if case.error else row_key(case, options)
        found = None if (overwrite or case.error) else completed_record(out_dir, case, key)
        if found is None:
            todo.append((case, key))
            continue
        done[case.row] = CaseRecord(
            case.row,
            case.name,
            output=str(case_output(out_dir, case)),
            metrics=found.get("metrics") or {},
            seconds=float(found.get("seconds") or 0.0),
            group=case.group,
            resumed=True,
        )
    return Plan(list(cases), done, todo)


def finish(plan: Plan, new_records: Sequence[CaseRecord], out_dir: Path) -> BatchOutcome:
    """All records in manifest order, and ``metrics.csv`` for every successful row (earlier runs' included)."""
    from MedFusionLib.core.imageio import remove_stale_partials
    from MedFusionLib.metrics import METRIC_KEYS
    from MedFusionLib.study.resume import RECORD_DIR

    by_row = {**plan.done, **{r.row: r for r in new_records}}
    outcome = BatchOutcome([by_row[c.row] for c in plan.cases if c.row in by_row])
    for folder in (Path(out_dir), Path(out_dir) / RECORD_DIR):  # every row has ended: no write is in flight
        if folder.is_dir():
            remove_stale_partials(folder)  # a killed worker's temporary files (its rows ran elsewhere)
    write_metrics_csv(Path(out_dir) / "metrics.csv", outcome.succeeded, METRIC_KEYS)
    return outcome


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
    write_atomically(Path(path), lambda tmp: Path(tmp).write_text(buffer.getvalue(), encoding="utf-8"))


def internal_error(err: BaseException) -> str:
    """One line for an unexpected exception of a row (a bug, not the user's input)."""
    return f"internal error: {type(err).__name__}: {err}".splitlines()[0]


def run_plan(
    plan: Plan, out_dir: Path, options: FusionOptions, on_record: Callable[[CaseRecord, int], None] | None = None
) -> BatchOutcome:
    """Run a plan's rows in this process, one after another (the sequential path: no Dask, no subprocess)."""
    records = []
    for case, key in plan.todo:
        try:
            record = run_recorded_case(case, Path(out_dir), options, key)
        except Exception as err:  # a bug in one row fails that row, as on Dask; the others go on
            record = CaseRecord(case.row, case.name, error=internal_error(err), group=case.group)
        records.append(record)
        if on_record is not None:
            on_record(record, len(plan.cases))
    return finish(plan, records, out_dir)


def run_batch(
    manifest: Path,
    out_dir: Path,
    options: FusionOptions,
    on_record: Callable[[CaseRecord, int], None] | None = None,
    overwrite: bool = False,
) -> BatchOutcome:
    """Fuse the cases of ``manifest`` not yet done into ``out_dir`` one after another; ``metrics.csv``."""
    cases = read_manifest(manifest)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return run_plan(plan_cases(cases, out_dir, options, overwrite), out_dir, options, on_record)
