"""CPU inference helpers shared by the deep fusion methods.

* :func:`load_network` loads a shipped weight file by name, once (``functools.lru_cache``), offline.
* :func:`torch_threads` sets torch's intra-op threads for the duration of a call, deliberately: the value of
  ``$MEDFUSION_THREADS`` if set, else the CPUs this process may use (capped at 8: these small networks stop
  scaling there), and restores the caller's setting afterwards.
* :func:`run_slices` runs a 2-D network over (n_inputs, batch, H, W) in chunks of bounded pixel count.
* :func:`run_tiled_3d` runs a 3-D network over (n_inputs, D, H, W) in cubic tiles with an overlap (halo)
  wider than the network's receptive radius, so the result equals whole-volume inference while memory stays
  bounded whatever the volume size.

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
from MedFusionLib.networks import build_network

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MAX_CHUNK_PIXELS = 1 << 21  # per input, per forward pass in slice mode (~2 M pixels: 8 slices of 512 x 512)
TILE = 96  # core edge of a 3-D tile


def weight_path(name: str) -> Path:
    override = os.environ.get("MEDFUSION_WEIGHTS_DIR")
    return (Path(override) if override else WEIGHTS_DIR) / f"{name}.pt"


@functools.cache
def load_network(name: str, path: str | None = None) -> torch.nn.Module:
    """The network of weight file ``name`` (``MedFusionLib/weights/<name>.pt``), in eval mode, float32."""
    file = Path(path) if path else weight_path(name)
    if not file.exists():
        raise MedFusionError(
            f"weights for {name!r} not found at {file}; train them with 'medfusion train {name} --data DIR'"
        )
    payload = torch.load(file, map_location="cpu", weights_only=True)
    net = build_network(payload["network"], payload["config"])
    net.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    net.meta = json.loads(payload.get("meta", "{}"))
    for module in net.modules():  # Cancel inside one long forward pass (a 3-D tile takes seconds): per layer
        module.register_forward_pre_hook(_check_scope_hook)
    return net


def _check_scope_hook(_module: torch.nn.Module, _inputs) -> None:
    check_scope()


def thread_count() -> int:
    env = os.environ.get("MEDFUSION_THREADS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


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


def run_slices(
    forward: Callable[[torch.Tensor], torch.Tensor], stack: np.ndarray, max_pixels: int = MAX_CHUNK_PIXELS
) -> np.ndarray:
    """``forward``: (n, b, 1, H, W) tensor -> (b, 1, H, W); ``stack`` (n, batch, H, W) float32 -> (batch, H, W).

    At most ``max_pixels`` pixels per input go through the network at once (wide networks pass less).
    """
    n, batch, h, w = stack.shape
    chunk = max(1, max_pixels // max(1, h * w))
    out = np.empty((batch, h, w), np.float32)
    with torch_threads(), torch.inference_mode(), _autocast():
        for start in range(0, batch, chunk):
            check_scope()
            x = torch.from_numpy(np.ascontiguousarray(stack[:, start : start + chunk], dtype=np.float32)).unsqueeze(2)
            out[start : start + chunk] = forward(x)[:, 0].float().clamp_(0, 1).numpy()
    return out


def run_triplanar(
    forward: Callable[[torch.Tensor], torch.Tensor], stack: np.ndarray, max_pixels: int = MAX_CHUNK_PIXELS
) -> np.ndarray:
    """2.5-D volume mode of a 2-D network: ``run_slices`` along each of the three axes of ``stack``
    (n, D, H, W), the three results averaged (fewer seams than one axis, at three times the cost)."""
    out = np.zeros(stack.shape[1:], np.float32)
    for axis in range(3):
        moved = np.moveaxis(stack, axis + 1, 1)
        out += np.moveaxis(run_slices(forward, moved, max_pixels), 0, axis)
    return out / 3.0


def fuse_with_2d_network(
    name: str, stack: np.ndarray, mode: str, max_pixels: int = MAX_CHUNK_PIXELS, **forward_options: Any
) -> np.ndarray:
    """The shipped 2-D network ``name`` over a slice batch (``slice`` mode) or tri-planarly (``volume``);
    ``forward_options`` (e.g. a fusion ``rule`` or ``strategy``) are passed to its ``forward``."""
    net = load_network(name)
    forward = (lambda x: net(x, **forward_options)) if forward_options else net
    run = run_slices if mode == "slice" else run_triplanar
    return run(forward, stack, max_pixels)


def run_tiled_3d(
    forward: Callable[[torch.Tensor], torch.Tensor], stack: np.ndarray, halo: int, tile: int = TILE
) -> np.ndarray:
    """``forward``: (n, 1, 1, d, h, w) -> (1, 1, d, h, w); ``stack`` (n, D, H, W) -> (D, H, W), tiled with ``halo``."""
    shape = stack.shape[1:]
    out = np.empty(shape, np.float32)
    starts = [range(0, s, tile) for s in shape]
    with torch_threads(), torch.inference_mode(), _autocast():
        for z in starts[0]:
            for y in starts[1]:
                for x in starts[2]:
                    check_scope()
                    core = [(z, min(z + tile, shape[0])), (y, min(y + tile, shape[1])), (x, min(x + tile, shape[2]))]
                    outer = [(max(0, a - halo), min(s, b + halo)) for (a, b), s in zip(core, shape)]
                    sub = stack[:, outer[0][0] : outer[0][1], outer[1][0] : outer[1][1], outer[2][0] : outer[2][1]]
                    t = torch.from_numpy(np.ascontiguousarray(sub, dtype=np.float32))[:, None, None]
                    res = forward(t)[0, 0].float().clamp_(0, 1).numpy()
                    inner = tuple(slice(a - oa, b - oa) for (a, b), (oa, _) in zip(core, outer))
                    out[core[0][0] : core[0][1], core[1][0] : core[1][1], core[2][0] : core[2][1]] = res[inner]
    return out
