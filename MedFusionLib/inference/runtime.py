"""Torch inference: the shipped ``.pt`` weights, threads and precision, for training, the ONNX export, the parity
tests and the methods that still run in torch (``docs/runtime.md`` says which). The fusion methods run their
networks through ONNX Runtime (``inference/onnx_runtime.py``) and never import this module for them.

* :func:`load_network` loads a weight file once per resolved path (a cache keyed by name alone would hand back
  the wrong network when ``$MEDFUSION_WEIGHTS_DIR`` or a path changes), offline; an unreadable or truncated file
  is a one-line error.
* :func:`torch_threads` sets torch's intra-op threads for the duration of a call (``devices.thread_count``) and
  restores the caller's setting afterwards.
* :func:`run_slices`, :func:`run_triplanar` and :func:`run_tiled_3d` are ``inference/batching.py``'s loops with
  a torch forward.

Precision (:func:`precision`): the convolutions run under bfloat16 autocast on CPUs with native bf16 instructions
and in float32 elsewhere; ``$MEDFUSION_PRECISION=float32|bfloat16|auto`` overrides. Inputs, the residual max and
the output stay float32.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.progress import check_scope
from MedFusionLib.inference import batching
from MedFusionLib.inference.batching import MAX_CHUNK_PIXELS, TILE
from MedFusionLib.inference.devices import thread_count
from MedFusionLib.inference.weights import WEIGHTS_DIR, weight_path
from MedFusionLib.networks import build_network

__all__ = [
    "MAX_CHUNK_PIXELS",
    "TILE",
    "WEIGHTS_DIR",
    "load_network",
    "run_slices",
    "run_tiled_3d",
    "run_triplanar",
    "thread_count",
    "weight_path",
]


def load_network(name: str, path: str | None = None) -> torch.nn.Module:
    """The network of weight file ``name`` (``MedFusionLib/weights/<name>.pt``, or ``path``), in eval mode,
    float32; loaded once per resolved path and file version."""
    file = Path(path) if path else weight_path(name)
    if not file.exists():
        raise MedFusionError(
            f"weights for {name!r} not found at {file}; train them with 'medfusion train {name} --data DIR'"
        )
    stat = file.stat()
    return _load_weights(str(file.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.cache
def _load_weights(path: str, _mtime_ns: int, _size: int) -> torch.nn.Module:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        net = build_network(payload["network"], payload["config"])
        net.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MedFusionError(f"{path}: not a readable MedFusion weight file ({reason})") from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    net.meta = json.loads(payload.get("meta", "{}"))
    for module in net.modules():  # Cancel inside one long forward pass (a 3-D tile takes seconds): per layer
        module.register_forward_pre_hook(_check_scope_hook)
    return net


load_network.cache_clear = _load_weights.cache_clear  # type: ignore[attr-defined]


def _check_scope_hook(_module: torch.nn.Module, _inputs) -> None:
    check_scope()


@contextlib.contextmanager
def torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    wanted = thread_count()
    if wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if wanted != before:
            torch.set_num_threads(before)


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bf16 autocast is faster."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:  # not Linux: stay in float32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def precision() -> str:
    """``$MEDFUSION_PRECISION`` (``float32``, ``bfloat16`` or ``auto``, the default): the precision of the convolutions.

    ``auto`` picks bfloat16 where the CPU has native bf16 instructions (measured 1.3-1.7x faster for IFCNN-lite
    on such a CPU, output within about one grey level of float32: docs/deep-fusion.md), float32 elsewhere.
    """
    value = os.environ.get("MEDFUSION_PRECISION", "auto").lower()
    if value in ("bf16", "bfloat16"):
        return "bfloat16"
    if value == "auto":
        return "bfloat16" if native_bf16() else "float32"
    return "float32"


def _autocast():
    if precision() == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def numpy_forward(forward: Callable[[torch.Tensor], torch.Tensor]) -> batching.Forward:
    """A torch forward as a numpy one (``inference/batching.py``); call it inside :func:`torch_context`."""
    return lambda x: forward(torch.from_numpy(x)).float().numpy()


@contextlib.contextmanager
def torch_context() -> Iterator[None]:
    """Threads, inference mode and precision of torch inference."""
    with torch_threads(), torch.inference_mode(), _autocast():
        yield


def run_slices(
    forward: Callable[[torch.Tensor], torch.Tensor], stack: np.ndarray, max_pixels: int = MAX_CHUNK_PIXELS
) -> np.ndarray:
    """``forward``: (n, b, 1, H, W) tensor -> (b, 1, H, W); ``stack`` (n, batch, H, W) float32 -> (batch, H, W)."""
    with torch_context():
        return batching.run_slices(numpy_forward(forward), stack, max_pixels)


def run_triplanar(
    forward: Callable[[torch.Tensor], torch.Tensor], stack: np.ndarray, max_pixels: int = MAX_CHUNK_PIXELS
) -> np.ndarray:
    """Tri-planar (2.5-D) volume mode of a torch 2-D network (``batching.run_triplanar``)."""
    with torch_context():
        return batching.run_triplanar(numpy_forward(forward), stack, max_pixels)


def fuse_with_2d_network(
    name: str, stack: np.ndarray, mode: str, max_pixels: int = MAX_CHUNK_PIXELS, **forward_options: Any
) -> np.ndarray:
    """The shipped 2-D network ``name`` in torch over a slice batch (``slice`` mode) or tri-planarly (``volume``);
    ``forward_options`` (e.g. a fusion ``rule`` or ``strategy``) are passed to its ``forward``."""
    net = load_network(name)
    forward = (lambda x: net(x, **forward_options)) if forward_options else net
    with torch_context():
        return batching.run_2d(numpy_forward(forward), stack, mode, max_pixels)


def run_tiled_3d(
    forward: Callable[[torch.Tensor], torch.Tensor], stack: np.ndarray, halo: int, tile: int = TILE
) -> np.ndarray:
    """``forward``: (n, 1, 1, d, h, w) -> (1, 1, d, h, w); ``stack`` (n, D, H, W) -> (D, H, W), tiled with ``halo``."""
    with torch_context():
        return batching.run_tiled_3d(numpy_forward(forward), stack, halo, tile)
