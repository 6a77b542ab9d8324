"""``medfusion study``: every chosen method on every case of a manifest, the paper-style tables and the report.

Each (method, case) runs through :func:`MedFusionLib.study.runner.run_case` (one record, a pure function), so
the work can be handed to any executor: :func:`run_locally` here, the Dask engine where it is available.
Writes ``OUTDIR/<method>/<case>.<ext>``, ``OUTDIR/cases.csv`` (one row per method and case),
``OUTDIR/summary.csv`` (per method, and per method and group when the manifest has groups: means with their
95 % t-intervals, seconds per case, paired wins / ties / losses against the baseline, see
:mod:`MedFusionLib.study.statistics`) and ``OUTDIR/report.html`` (:mod:`MedFusionLib.study.report`).
"""

from __future__ import annotations

import csv
import io as text_io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.options import FusionOptions
from MedFusionLib.study.manifest import Case, case_output, read_manifest, refuse_input_clashes
from MedFusionLib.study.outcome import StudyOutcome
from MedFusionLib.study.runner import CaseRecord, run_case
from MedFusionLib.study.statistics import mean_ci, paired_outcome

DEFAULT_BASELINE = "max"
ALL_GROUPS = "all"

Task = tuple[Case, Path, FusionOptions]
Executor = Callable[[Sequence[Task]], Iterable[CaseRecord]]  # must yield one record per task, in task order


def run_locally(tasks: Sequence[Task]) -> Iterable[CaseRecord]:
    """Run the tasks one after another in this process."""
    for case, out_dir, options in tasks:
        yield run_case(case, out_dir, options)


def choose_methods(spec: str | None, baseline: str, n_inputs: int, mode: str) -> list[str]:
    """The methods a ``--methods`` value names (``None``/``"all"``: every method for ``n_inputs`` in ``mode``),
    baseline first; a one-line error for an unknown or unfit name."""
    from MedFusionLib.fusion import available_methods, get_method

    known = available_methods()
    if not spec or spec == "all":
        names = [m.name for m in known if m.accepts(n_inputs) and mode in m.modes]
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
    for name in [baseline, *names]:
        get_method(name).check(n_inputs, mode)
    return [baseline] + [n for n in dict.fromkeys(names) if n != baseline]


def run_study(
    manifest: Path,
    out_dir: Path,
    options: FusionOptions,
    methods: str | None = None,
    baseline: str = DEFAULT_BASELINE,
    executor: Executor = run_locally,
    on_record: Callable[[str, CaseRecord, int], None] | None = None,
    report: bool = True,
) -> StudyOutcome:
    """Run the study and write its outputs into ``out_dir``; see the module docstring."""
    from MedFusionLib.metrics import METRIC_KEYS

    cases = read_manifest(manifest)
    names = choose_methods(methods, baseline, 2, options.mode)
    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        raise MedFusionError(f"{out_dir}: parent folder {out_dir.parent} does not exist")
    cases = refuse_input_clashes(
        cases,
        lambda case: [case_output(out_dir / name, case) for name in names],
        [out_dir / name for name in ("cases.csv", "summary.csv", "report.html")],
    )
    tasks: list[Task] = []
    owners: list[str] = []
    for name in names:
        (out_dir / name).mkdir(parents=True, exist_ok=True)
        for case in cases:
            tasks.append((case, out_dir / name, replace(options, method=name)))
            owners.append(name)
    outcome = StudyOutcome(out_dir, names, baseline, cases)
    for name, record in zip(owners, executor(tasks)):
        outcome.records.append((name, record))
        if on_record is not None:
            on_record(name, record, len(tasks))
    write_cases_csv(out_dir / "cases.csv", outcome.records, METRIC_KEYS)
    outcome.summary = summarise(outcome.records, names, baseline, bool(outcome.groups))
    write_summary_csv(out_dir / "summary.csv", outcome.summary)
    if report:
        from MedFusionLib.study.report import write_report

        write_report(outcome, options, manifest)
    return outcome


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    from MedFusionLib.core.imageio import write_atomically

    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_atomically(Path(path), lambda tmp: Path(tmp).write_text(buffer.getvalue(), encoding="utf-8"))


def _number(value: float) -> str:
    return "" if value != value else f"{value:.10g}"  # NaN (no interval) is an empty cell


def write_cases_csv(path: Path, records: Sequence[tuple[str, CaseRecord]], keys: Sequence[str]) -> None:
    """``method, case, group``, the metric keys and ``seconds``, one row per successful (method, case)."""
    rows = [
        [method, r.name, r.group, *(_number(float(r.metrics[k])) for k in keys), f"{r.seconds:.4f}"]
        for method, r in records
        if r.ok
    ]
    _write_csv(path, ["method", "case", "group", *keys, "seconds"], rows)


def summarise(
    records: Sequence[tuple[str, CaseRecord]], methods: Sequence[str], baseline: str, by_group: bool
) -> list[dict]:
    """One row per method (group ``all``), then per method and group when ``by_group``: ``n``, the metric
    means and 95 % t-intervals, ``seconds_per_case``, and per metric the paired verdict against ``baseline``
    (``<KEY>_vs_baseline``) with the counts ``wins``, ``ties``, ``losses``."""
    from MedFusionLib.metrics import METRIC_KEYS, METRICS

    ok = [(m, r) for m, r in records if r.ok]
    groups = [ALL_GROUPS] + (sorted({r.group for _, r in ok if r.group}) if by_group else [])
    rows = []
    for group in groups:
        chosen = [(m, r) for m, r in ok if group == ALL_GROUPS or r.group == group]
        base = {r.name: r for m, r in chosen if m == baseline}
        for method in methods:
            mine = [r for m, r in chosen if m == method]
            if not mine:
                continue
            row: dict = {"method": method, "group": group, "n": len(mine)}
            for key in METRIC_KEYS:
                row[f"{key}_mean"], row[f"{key}_ci_low"], row[f"{key}_ci_high"] = mean_ci(
                    [float(r.metrics[key]) for r in mine]
                )
            row["seconds_per_case"] = sum(r.seconds for r in mine) / len(mine)
            paired = [r for r in mine if r.name in base]
            counts = {"win": 0, "tie": 0, "loss": 0}
            for key in METRIC_KEYS:
                result = paired_outcome(
                    [float(r.metrics[key]) for r in paired],
                    [float(base[r.name].metrics[key]) for r in paired],
                    METRICS[key].direction,
                )
                outcome = "baseline" if method == baseline else result.outcome
                row[f"{key}_diff"], row[f"{key}_vs_baseline"] = result.difference, outcome
                if method != baseline:
                    counts[outcome] += 1
            row["wins"], row["ties"], row["losses"] = counts["win"], counts["tie"], counts["loss"]
            rows.append(row)
    return rows


def summary_columns() -> list[str]:
    from MedFusionLib.metrics import METRIC_KEYS

    columns = ["method", "group", "n"]
    for key in METRIC_KEYS:
        columns += [f"{key}_mean", f"{key}_ci_low", f"{key}_ci_high"]
    columns += ["seconds_per_case", "wins", "ties", "losses"]
    for key in METRIC_KEYS:
        columns += [f"{key}_diff", f"{key}_vs_baseline"]
    return columns


def write_summary_csv(path: Path, rows: Sequence[dict]) -> None:
    """The summary rows, numbers with 10 significant digits, an empty cell where no interval exists."""
    columns = summary_columns()
    _write_csv(
        path, columns, ([_number(v) if isinstance(v, float) else v for v in (row[c] for c in columns)] for row in rows)
    )
