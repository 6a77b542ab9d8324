"""Starting a worker job from the scene, the same for the Slicer module and the web app: a private temp folder,
the inputs and options written into it, the worker started; whatever fails on the way (a bad option, a full disk,
a worker that does not start) removes the folder before the error goes on, so no copy of the inputs (patient
data) is left behind."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

Job = TypeVar("Job")


def start_job(
    logic: Any, nodes: list, launch: Callable[[str], Job], *, prefix: str = "medfusion-job-", **options: Any
) -> tuple[str, Job, list]:
    """``logic.writeJob`` into a new temp folder, then ``launch(folder)``; returns (folder, the launched job,
    the modality of each input). ``options``: those of :meth:`MedFusionLogic.writeJob`."""
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        modalities = logic.writeJob(folder, nodes, **options)
        job = launch(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, job, modalities
