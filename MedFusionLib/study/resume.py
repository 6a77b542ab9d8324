"""Resume records: what makes a cohort row "done", so a rerun skips it and a half-finished one is redone.

After a row's fused image is written (atomically), the process that wrote it writes
``OUTDIR/.medfusion/<name>.json`` (atomically too) with:

* ``key`` - a SHA-256 of what determines the output: the row (name, group, input paths and each input's size and
  modification time), the resolved method and every fusion option, and the MedFusion version;
* the output's file name, size, modification time and SHA-256, and the row's metrics.

A row is done when its record exists, its key equals the key of the row now, and the output file exists with the
recorded size and either the recorded modification time (the fast path: a rerun of a large cohort reads no image)
or, when the time differs (OUTDIR copied elsewhere), the recorded SHA-256. Any other state (no record; record from
other options or changed inputs; output missing, truncated or replaced) means "run it". Because the record is written only after the output is in place,
a crash between the two leaves a row that is simply redone: tasks are idempotent.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from MedFusionLib.core.options import FusionOptions
from MedFusionLib.study.manifest import Case, case_output

RECORD_DIR = ".medfusion"
RECORD_VERSION = 1


def _input_stamp(path: str) -> dict[str, Any]:
    try:
        stat = os.stat(path)
    except OSError:
        return {"path": path, "missing": True}
    return {"path": path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def row_key(case: Case, options: FusionOptions) -> str:
    """SHA-256 over the row content, its inputs' size and mtime, the resolved method, options and version."""
    from MedFusionLib import __version__
    from MedFusionLib.fusion.registry import get_method

    described = {
        "record": RECORD_VERSION,
        "medfusion": __version__,
        "name": case.name,
        "group": case.group,
        "inputs": [_input_stamp(p) for p in case.inputs],
        "options": {**options.as_dict(), "method": get_method(options.method or None).name},
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def record_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / RECORD_DIR / f"{name}.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_record(out_dir: Path, case: Case, key: str, output: Path, metrics: dict, seconds: float) -> None:
    """Mark ``case`` done: call only after ``output`` is completely written."""
    from MedFusionLib.core.imageio import write_atomically

    output = Path(output)
    record = {
        "key": key,
        "row": case.row,
        "name": case.name,
        "output": output.name,
        "output_size": output.stat().st_size,
        "output_mtime_ns": output.stat().st_mtime_ns,
        "output_sha256": file_sha256(output),
        "metrics": metrics,
        "seconds": seconds,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    path = record_path(out_dir, case.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, default=str)
    write_atomically(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def completed_record(out_dir: Path, case: Case, key: str) -> dict | None:
    """The row's record when the row is done with exactly this key and an intact output, else None."""
    if case.error:
        return None
    try:
        record = json.loads(record_path(out_dir, case.name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    output = case_output(out_dir, case)
    if not isinstance(record, dict) or record.get("key") != key or record.get("output") != output.name:
        return None
    try:
        stat = output.stat()
        if stat.st_size != record.get("output_size"):
            return None
        if stat.st_mtime_ns != record.get("output_mtime_ns") and file_sha256(output) != record.get("output_sha256"):
            return None
    except OSError:
        return None
    return record
