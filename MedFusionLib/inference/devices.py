"""Where inference runs: the device choice (``--device auto|cpu|cuda``), ONNX Runtime's execution providers and
the CPU threads, without importing torch.

The device is carried by a context variable (:func:`device_scope`), set by the pipeline around one fusion, so
the methods' ``fuse`` functions need no extra argument. ``auto`` takes ONNX Runtime's CUDA provider when it is
installed (the ``onnxruntime-gpu`` wheel) and the CPU otherwise, saying so in one note line; ``cuda`` without
it is a one-line error raised before any input is read (:func:`check_device`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.log import note
from MedFusionLib.core.options import DEVICE

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
MAX_THREADS = 8  # these small networks stop scaling there

_DEVICE: ContextVar[str] = ContextVar("medfusion_device", default=DEVICE.default)


@contextmanager
def device_scope(device: str) -> Iterator[None]:
    """Run the inference below on ``device`` (checked first)."""
    token = _DEVICE.set(DEVICE.check(device))
    try:
        yield
    finally:
        _DEVICE.reset(token)


def current_device() -> str:
    """The device of the enclosing :func:`device_scope` (``auto`` outside one)."""
    return _DEVICE.get()


def thread_count() -> int:
    """``$MEDFUSION_THREADS`` when set (a positive integer, else a one-line error), else the CPUs this process
    may use, capped at :data:`MAX_THREADS`."""
    env = os.environ.get("MEDFUSION_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise MedFusionError(f"MEDFUSION_THREADS={env!r} is not a positive whole number of threads")
        return int(env)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_THREADS))


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, with its telemetry off unless the user asked for it: medical images are fused
    where nothing should report home, and the official Linux and macOS wheels otherwise start a telemetry
    uploader (and leave a ``.ses`` session file in the temporary folder) on import; ``ORT_DISABLE_TELEMETRY=1``
    must be set before the import. A one-line error when onnxruntime is missing."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        import onnxruntime
    except ImportError:
        raise MedFusionError(
            "onnxruntime is not installed: 'pip install onnxruntime' (fusion with the deep methods needs it)"
        ) from None
    return onnxruntime


def available_providers() -> tuple[str, ...]:
    """ONNX Runtime's execution providers in this Python."""
    return tuple(import_onnxruntime().get_available_providers())


def check_device(device: str) -> str:
    """``device`` if this machine can honour it (checked before any input is read, with ``$MEDFUSION_THREADS``);
    ``cuda`` without ONNX Runtime's CUDA provider is a one-line error."""
    DEVICE.check(device)
    thread_count()
    if device == "cuda" and CUDA_PROVIDER not in available_providers():
        raise MedFusionError(
            "--device cuda: no CUDA GPU available to ONNX Runtime (providers: "
            f"{', '.join(available_providers())}); install onnxruntime-gpu on a machine with an NVIDIA GPU, "
            "or use --device auto or cpu"
        )
    return device


def providers(device: str | None = None) -> tuple[str, ...]:
    """ONNX Runtime providers for ``device`` (default: the current scope's), best first."""
    device = check_device(device or current_device())
    if device == "cpu":
        return (CPU_PROVIDER,)
    if CUDA_PROVIDER in available_providers():
        return (CUDA_PROVIDER, CPU_PROVIDER)
    _note_cpu_fallback()
    return (CPU_PROVIDER,)


@functools.cache
def _note_cpu_fallback() -> None:
    note("device auto: no CUDA GPU available to ONNX Runtime, running on the CPU")
