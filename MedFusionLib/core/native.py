"""Native code's side effects, contained: what ITK, GDCM, libtiff and the NIfTI library print on stderr, and
the (cached) scan of a DICOM folder's series. Imported by the readers and by the resource guard."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import SimpleITK as sitk

PathLike = str | os.PathLike


class _NativeMessages:
    """Text that native libraries (ITK, GDCM, libtiff, the NIfTI library) wrote to stderr meanwhile."""

    text = ""

    @property
    def last(self) -> str:
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        return lines[-1][-160:] if lines else ""


@contextmanager
def native_stderr() -> Iterator[_NativeMessages]:
    """Capture what native code prints on file descriptor 2 (ITK's and libtiff's warnings and errors), so a
    failure is reported in one line and a success prints nothing. The capture file is unlinked at once."""
    messages = _NativeMessages()
    try:
        capture_file = tempfile.TemporaryFile()
    except OSError:  # no usable temporary folder: let native messages through rather than fail
        yield messages
        return
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        capture_file.close()
        yield messages
        return
    with capture_file as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            messages.text = capture.read().decode(errors="replace")


def dicom_series(folder: PathLike) -> dict[str, list[str]]:
    """The DICOM series of a folder: series UID -> its slice files (sorted by position). The scan is cached
    per folder and modification time (the memory guard and the reader both need it)."""
    folder = Path(folder)
    return {sid: list(files) for sid, files in _scan_dicom(str(folder.resolve()), folder.stat().st_mtime_ns)}


@functools.lru_cache(maxsize=16)
def _scan_dicom(folder: str, mtime_ns: int) -> tuple[tuple[str, list[str]], ...]:
    reader = sitk.ImageSeriesReader()
    return tuple((sid, list(reader.GetGDCMSeriesFileNames(folder, sid))) for sid in reader.GetGDCMSeriesIDs(folder))
