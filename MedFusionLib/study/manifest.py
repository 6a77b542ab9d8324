"""Reading a cohort manifest: a CSV with columns ``a,b[,name][,group]``, one case per row.

Relative paths are relative to the CSV's folder. A row with a problem becomes a case that carries its error,
so a runner can report it and go on with the others.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from MedFusionLib.core.errors import MedFusionError


@dataclass(frozen=True)
class Case:
    """One manifest row: its 1-based row number, a name, the input paths (reference first) and a group."""

    row: int
    name: str
    inputs: tuple[str, ...]
    group: str = ""
    error: str = ""  # set when the row itself is unusable


def read_manifest(path: Path) -> list[Case]:
    """The cases of a manifest; a one-line error for a missing file or a missing a,b header."""
    path = Path(path)
    if not path.is_file():
        raise MedFusionError(f"{path}: no such manifest file")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "a" not in rows[0] or "b" not in rows[0]:
        raise MedFusionError(f"{path}: manifest needs a header with columns a,b[,name] and at least one row")
    cases = []
    for number, row in enumerate(rows, start=1):
        a, b = (row.get("a") or "").strip(), (row.get("b") or "").strip()
        name = (row.get("name") or "").strip() or Path(a).name.split(".")[0]
        group = (row.get("group") or "").strip()
        if not a or not b:
            cases.append(Case(number, name, (), group, error="row needs both a and b"))
            continue
        inputs = tuple(str(p if Path(p).is_absolute() else path.parent / p) for p in (a, b))
        cases.append(Case(number, name, inputs, group))
    return cases


def case_output(out_dir: Path, case: Case) -> Path:
    """Where a case's fused image goes: ``OUTDIR/<name>.<extension of a>`` (a DICOM folder gives NIfTI)."""
    from MedFusionLib.core.imageio import extension

    first = case.inputs[0] if case.inputs else ""
    ext = extension(first) if Path(first).suffix else ".nii.gz"
    return Path(out_dir) / f"{case.name}{ext}"
