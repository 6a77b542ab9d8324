"""Reading a cohort manifest: a CSV with columns ``a,b[,name][,group]``, one case per row.

Relative paths are relative to the CSV's folder and are made absolute here, so a worker started in another
folder (a Dask worker on another node) finds the same files. A row with a problem becomes a case that carries its
error, so a runner can report it and go on with the others.

Names become file names in OUTDIR (``<name>.<ext>`` and the resume record ``.medfusion/<name>.json``), so a name
with a path separator, ``..``, a leading dot or a control character is refused for its row (it could write
outside OUTDIR or over our own records), and a name used twice (compared case-insensitively, as macOS and Windows
file systems do) is made unique by a ``-2``, ``-3``... suffix in manifest order, noted on the case, so two rows
never write the same file and a rerun gives the same names.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from MedFusionLib.core.errors import MedFusionError


@dataclass(frozen=True)
class Case:
    """One manifest row: its 1-based row number, a name, the input paths (reference first) and a group.

    ``error`` is set when the row itself is unusable; ``note`` says when the name was changed (a duplicate)."""

    row: int
    name: str
    inputs: tuple[str, ...]
    group: str = ""
    error: str = ""
    note: str = ""


def name_problem(name: str) -> str:
    """Why ``name`` cannot be a file name inside OUTDIR ("" when it can)."""
    if not name:
        return "empty name"
    if "/" in name or "\\" in name:
        return f"name {name!r} contains a path separator (names are file names inside OUTDIR)"
    if ".." in name:
        return f"name {name!r} contains '..' (names are file names inside OUTDIR)"
    if name.startswith("."):
        return f"name {name!r} starts with '.' (hidden files and OUTDIR/.medfusion are reserved)"
    if any(ord(c) < 32 or c in ':*?"<>|' for c in name):
        return f"name {name!r} contains a character not allowed in file names"
    return ""


def _unique_names(cases: list[Case]) -> list[Case]:
    """Give later duplicates ``<name>-2``, ``-3``... (skipping names taken elsewhere in the manifest)."""
    taken = {c.name.casefold() for c in cases if not c.error}
    first_row: dict[str, int] = {}
    result = []
    for case in cases:
        key = case.name.casefold()
        if case.error or key not in first_row:
            if not case.error:
                first_row[key] = case.row
            result.append(case)
            continue
        suffix = 2
        while f"{key}-{suffix}" in taken:
            suffix += 1
        new = f"{case.name}-{suffix}"
        taken.add(new.casefold())
        note = f"name {case.name!r} is also row {first_row[key]}'s; written as {new!r}"
        result.append(Case(case.row, new, case.inputs, case.group, note=note))
    return result


def read_manifest(path: Path) -> list[Case]:
    """The cases of a manifest; a one-line error for a missing file or a missing a,b header."""
    path = Path(path)
    if not path.is_file():
        raise MedFusionError(f"{path}: no such manifest file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's BOM is not part of a name
            rows = list(csv.DictReader(handle))
    except UnicodeDecodeError as err:
        raise MedFusionError(f"{path}: not a text CSV file (byte {err.start} is not UTF-8)") from None
    except csv.Error as err:
        raise MedFusionError(f"{path}: not a readable CSV file ({err})") from None
    if not rows or "a" not in rows[0] or "b" not in rows[0]:
        raise MedFusionError(f"{path}: manifest needs a header with columns a,b[,name] and at least one row")
    folder = path.absolute().parent
    cases = []
    for number, row in enumerate(rows, start=1):
        a, b = (row.get("a") or "").strip(), (row.get("b") or "").strip()
        name = (row.get("name") or "").strip()
        if not name:  # from a's file name; never a path, but may be empty (".png")
            name = Path(a).name.split(".")[0] or f"row{number}"
        group = (row.get("group") or "").strip()
        if not a or not b:
            cases.append(Case(number, name, (), group, error="row needs both a and b"))
            continue
        problem = name_problem(name)
        if problem:
            cases.append(Case(number, name, (), group, error=problem))
            continue
        inputs = tuple(str(p if Path(p).is_absolute() else folder / p) for p in (a, b))
        cases.append(Case(number, name, inputs, group))
    return _unique_names(cases)


def case_output(out_dir: Path, case: Case) -> Path:
    """Where a case's fused image goes: ``OUTDIR/<name>.<extension of a>`` (a DICOM folder gives NIfTI)."""
    from MedFusionLib.core.imageio import extension

    first = case.inputs[0] if case.inputs else ""
    ext = extension(first) if Path(first).suffix else ".nii.gz"
    return Path(out_dir) / f"{case.name}{ext}"


def refuse_input_clashes(
    cases: Sequence[Case], outputs: Callable[[Case], Sequence[Path]], run_outputs: Sequence[Path] = ()
) -> list[Case]:
    """``cases`` with an ``error`` on every row whose output would overwrite an input of ANY row (another row's
    source named like this row's output, or a source inside OUTDIR); raises when one of the run's own files
    (``metrics.csv``, ``report.html`` ...) would. Inputs are never modified, whatever the manifest says."""
    from MedFusionLib.core.imageio import InputGuard

    guard = InputGuard([path for case in cases for path in case.inputs])
    for output in run_outputs:
        guard.check(output)
    checked = []
    for case in cases:
        for output in () if case.error else outputs(case):
            source = guard.clash(output)
            if source is not None:
                case = replace(case, error=f"{output}: output would overwrite the input {source}; rename the row")
                break
        checked.append(case)
    return checked
