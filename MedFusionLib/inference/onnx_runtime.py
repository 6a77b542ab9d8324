"""Running the shipped networks with ONNX Runtime: the fusion methods' inference path, without torch.

``medfusion export`` (``inference/onnx_export.py``) writes ``weights/<name>.onnx`` from ``<name>.pt``; here a
graph becomes an :class:`onnxruntime.InferenceSession` on the device of the enclosing
:func:`~MedFusionLib.inference.devices.device_scope` with ``devices.thread_count()`` threads, cached per resolved
path, file version, providers and threads, and a numpy *forward* for ``inference/batching.py``. A graph whose
network needs sides padded to a multiple (``medfusion.pad_multiple`` in its metadata, e.g. FusionUNet's
space-to-depth patch) gets them zero-padded here, as the torch network pads them itself. A modality-aware graph
(a second input, ``modalities``) gets the inputs' modality codes; inputs whose modality is not known get the
zero code the network was trained to read as "any modality".

A network without a graph (weights trained into ``$MEDFUSION_WEIGHTS_DIR`` by an older version) runs in torch,
with one note line.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.log import note
from MedFusionLib.inference import batching
from MedFusionLib.inference.batching import MAX_CHUNK_PIXELS, Forward
from MedFusionLib.inference.devices import import_onnxruntime, providers, thread_count
from MedFusionLib.inference.weights import weight_path

INPUT_NAME = "inputs"
MODALITIES_NAME = "modalities"  # a modality-aware graph's second input: codes (n_inputs, classes)
OUTPUT_NAME = "fused"
PAD_KEY = "medfusion.pad_multiple"
RADIUS_KEY = "medfusion.receptive_radius"  # what a 3-D graph's tiles need as halo (less one)


def load_session(name: str, path: str | Path | None = None) -> Any:
    """The ONNX Runtime session of graph ``name`` (``weights/<name>.onnx``, or ``path``); a missing, corrupted
    or truncated file, or a missing onnxruntime, is a one-line error."""
    file = Path(path) if path else weight_path(name, ".onnx")
    if not file.is_file():
        raise MedFusionError(f"ONNX graph for {name!r} not found at {file}; 'medfusion export {name}' writes it")
    stat = file.stat()
    return _session(str(file.resolve()), stat.st_mtime_ns, stat.st_size, providers(), thread_count())


@functools.cache
def _session(path: str, _mtime_ns: int, _size: int, chosen: tuple[str, ...], threads: int) -> Any:
    onnxruntime = import_onnxruntime()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ONNX Runtime's warnings are not the user's business
    try:
        return onnxruntime.InferenceSession(path, options, providers=list(chosen))
    except Exception as error:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise MedFusionError(f"{path}: not a readable ONNX graph ({reason[:200]})") from None


@functools.cache
def run_options(shrink: bool = True) -> Any:
    """Options of a run. ``shrink``: the run hands its CPU arena back when it ends
    (``memory.enable_memory_arena_shrinkage``); otherwise the session keeps the largest chunk's activations, which
    makes the next chunk fast. Measured 2026-12-07 (docs/runtime.md): shrinking after every run cost slice mode
    55 % more network time; not shrinking let volume mode's three axes of differently shaped chunks grow the arena
    past the 3 GB bound on a 512 x 512 x 400 pair. So slice mode keeps its arena until :func:`release_sessions`
    (once the fusion is done) and every other run shrinks."""
    options = import_onnxruntime().RunOptions()
    if shrink:
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def release_sessions() -> None:
    """Close every open session, and with it its CPU arena (measured 2026-12-07: 16 slices of 512 x 512 through
    fusion-unet leave 875 MB held by the arena): called once a fusion is done, so the output stages and the
    rest of a large run do not pay for it. The next fusion opens its sessions again (a few tens of ms each)."""
    if _session.cache_info().currsize:  # a classical method opened none: no collection to pay for
        _session.cache_clear()
        gc.collect()


def session_forward(session: Any, shrink: bool = True, modalities: Sequence[str | None] | None = None) -> Forward:
    """A numpy forward ``(n, b, 1, *spatial) -> (b, 1, *spatial)`` running ``session`` (``shrink``: see
    :func:`run_options`; ``modalities``: one name or None per input, read only by a modality-aware graph)."""
    pad = int(session.get_modelmeta().custom_metadata_map.get(PAD_KEY, "1"))
    options = run_options(shrink)
    aware = any(i.name == MODALITIES_NAME for i in session.get_inputs())

    def forward(x: np.ndarray) -> np.ndarray:
        h, w = x.shape[-2:]
        extra = ((-h) % pad, (-w) % pad)
        if any(extra):
            x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, extra[0]), (0, extra[1])])
        feed = {INPUT_NAME: x}
        if aware:
            feed[MODALITIES_NAME] = input_codes(modalities, x.shape[0])
        return session.run([OUTPUT_NAME], feed, options)[0][..., :h, :w]

    return forward


def input_codes(modalities: Sequence[str | None] | None, n_inputs: int) -> np.ndarray:
    """The modality codes (n_inputs, classes) of a modality-aware network's inputs: "not known" when none given."""
    from MedFusionLib.inference.modality_codes import modality_codes

    if modalities is None:
        modalities = [None] * n_inputs
    if len(modalities) != n_inputs:
        raise MedFusionError(f"{len(modalities)} modalities given for {n_inputs} inputs")
    return modality_codes(modalities)


def has_graph(name: str) -> bool:
    """True when network ``name`` has its ONNX graph beside its weights."""
    return weight_path(name, ".onnx").is_file()


def graph_metadata(name: str) -> dict[str, str]:
    """The metadata the export wrote into graph ``name`` (pad multiple, receptive radius, weights' hash)."""
    return dict(load_session(name).get_modelmeta().custom_metadata_map)


def network_forward(name: str, shrink: bool = True, modalities: Sequence[str | None] | None = None) -> Forward:
    """The forward of shipped network ``name``: its ONNX graph (``shrink``: see :func:`run_options`), or its
    torch weights when it has no graph; ``modalities``: see :func:`session_forward`."""
    if has_graph(name) or not weight_path(name).is_file():
        return session_forward(load_session(name), shrink, modalities)
    _note_torch_fallback(name)
    import torch

    from MedFusionLib.inference.runtime import load_network, numpy_forward, torch_context

    net = load_network(name)
    if getattr(net, "modality_classes", 0):
        forward = numpy_forward(lambda x: net(x, torch.from_numpy(input_codes(modalities, x.shape[0]))))
    else:
        forward = numpy_forward(net)

    def in_torch(x: np.ndarray) -> np.ndarray:
        with torch_context():
            return forward(x)

    return in_torch


@functools.cache
def _note_torch_fallback(name: str) -> None:
    note(f"{name}: no ONNX graph beside its weights ('medfusion export {name}' writes one); running it in torch")


def fuse_2d(
    name: str,
    stack: np.ndarray,
    mode: str = "slice",
    max_pixels: int = MAX_CHUNK_PIXELS,
    modalities: Sequence[str | None] | None = None,
    **variant: Any,
) -> np.ndarray:
    """Shipped 2-D network ``name`` over a slice batch (``slice`` mode) or tri-planarly (``volume``).

    ``modalities``: one per input, for a modality-aware network (see :func:`session_forward`). ``variant``:
    forward options the exported graph does not hold (e.g. another fusion ``rule`` or ``strategy``); any given
    (not None) runs the network in torch instead (``runtime.fuse_with_2d_network``)."""
    chosen = {key: value for key, value in variant.items() if value is not None}
    if chosen:
        from MedFusionLib.inference.runtime import fuse_with_2d_network  # torch, for a variant only

        return fuse_with_2d_network(name, stack, mode, max_pixels, **chosen)
    forward = network_forward(name, shrink=mode != "slice", modalities=modalities)
    return batching.run_2d(forward, stack, mode, max_pixels)
