"""The weight-map and feature methods on ONNX Runtime: their network parts run as graphs
(``inference/export_parts.py`` says what each graph holds), the fixed post-processing in numpy
(``inference/pyramids.py``). No torch: ``medfusion fuse``, the worker and the web app run these without it.

* decision-map-cnn: graph = raw weight maps; numpy = smoothing, Laplacian-pyramid blend (2-D per slice, or 3-D
  after tri-planar weights in volume mode);
* deep-feature-weighting: graph = encoder activity weights; numpy = as decision-map-cnn;
* deep-features: graph = the whole rule (every shape follows the input's); numpy = the tri-planar average;
* chartsias: one graph per modality's encoder and one for the decoder; numpy = padding, the latents' max.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from MedFusionLib.core.progress import check_scope
from MedFusionLib.inference import batching, pyramids
from MedFusionLib.inference.onnx_runtime import INPUT_NAME, OUTPUT_NAME, load_session, run_options
from MedFusionLib.inference.weights import weight_path

FEATURE_CHUNK_DIVISOR = 8  # as inference/weight_blending.py: feature maps are wide, fewer pixels per pass
CHARTSIAS_MULTIPLE = 4  # two poolings


def graph(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The graph ``name`` as a numpy function of its one input."""
    session = load_session(name)
    return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)}, run_options())[
        0
    ]


def setting(name: str, key: str, default: float) -> float:
    """A network setting the export wrote into graph ``name``'s metadata (e.g. ``smooth_sigma``)."""
    value = load_session(name).get_modelmeta().custom_metadata_map.get(f"medfusion.{key}")
    return float(value) if value is not None else default


def triplanar_weights(weight_fn: Callable[[np.ndarray], np.ndarray], stack: np.ndarray) -> np.ndarray:
    """Weights (k, D, H, W) from a 2-D ``weight_fn`` ((n, b, 1, h, w) -> (k, b, 1, h, w)) along each of the three
    axes of ``stack`` (n, D, H, W), averaged; the chunks of ``weight_blending.triplanar_weights``."""
    total: np.ndarray | None = None
    for axis in range(3):
        moved = np.moveaxis(stack, axis + 1, 1)
        h, w = moved.shape[2:]
        chunk = max(1, batching.MAX_CHUNK_PIXELS // FEATURE_CHUNK_DIVISOR // max(1, h * w))
        for start in range(0, moved.shape[1], chunk):
            check_scope()
            part = weight_fn(moved[:, start : start + chunk, None])[:, :, 0]
            if total is None:
                total = np.zeros((part.shape[0], *stack.shape[1:]), np.float32)
            np.moveaxis(total, axis + 1, 1)[:, start : start + chunk] += part
    assert total is not None  # a volume has at least one slice
    total /= np.float32(3.0)
    return total


def blend_volume(stack: np.ndarray, weights: np.ndarray, sigma: float, levels: int) -> np.ndarray:
    """3-D smoothing of ``weights`` (n, D, H, W), renormalised, 3-D Laplacian blend of ``stack``, clipped to 0..1."""
    smoothed = pyramids.smooth_weights(weights, sigma, 3)
    return np.clip(pyramids.laplacian_blend(stack, smoothed, levels, 3), 0.0, 1.0)


def weight_map_fuse(graph_name: str, stack: np.ndarray, mode: str, sigma: float, levels: int) -> np.ndarray:
    """A weight-map method whose graph gives (n, b, 1, h, w) weights: slice mode blends each chunk in 2-D,
    volume mode blends the tri-planar weights in 3-D."""
    weight_fn = graph(graph_name)
    if mode == "slice":

        def forward(x: np.ndarray) -> np.ndarray:
            weights = pyramids.smooth_weights(weight_fn(x), sigma, 2)
            return pyramids.laplacian_blend(x, weights, levels, 2)

        return batching.run_slices(forward, stack)
    return blend_volume(stack, triplanar_weights(weight_fn, stack), sigma, levels)


def decision_map_fuse(stack: np.ndarray, mode: str) -> np.ndarray:
    """decision-map-cnn: sigma and levels as the trained network has them (the graph's metadata)."""
    name = "decision-map-cnn"
    return weight_map_fuse(name, stack, mode, setting(name, "smooth_sigma", 2.0), int(setting(name, "levels", 4)))


def rule_fuse(graph_name: str, stack: np.ndarray, mode: str, max_pixels: int) -> np.ndarray:
    """A graph that fuses by itself ((n, b, 1, h, w) -> (b, 1, h, w)): per slice, or tri-planar."""
    return batching.run_2d(graph(graph_name), stack, mode, max_pixels)


def chartsias_modalities() -> list[str]:
    """The modalities with an encoder graph (``chartsias-encoder-<modality>.onnx``)."""
    prefix = "chartsias-encoder-"
    return sorted(p.stem[len(prefix) :] for p in weight_path("chartsias", ".onnx").parent.glob(prefix + "*.onnx"))


def chartsias_forward(modalities: Sequence[str], n_inputs: int) -> batching.Forward:
    """chartsias's forward: each input through its modality's encoder, the latents' max, the decoder; sides
    zero-padded to a multiple of 4 and cropped back, as the torch network does. A wrong count or a modality
    without an encoder is a one-line ValueError (as the torch network's)."""
    names = [str(m).lower() for m in modalities]
    if len(names) != n_inputs:
        raise ValueError(f"{len(names)} modalities given for {n_inputs} inputs")
    known = chartsias_modalities()
    unknown = sorted({m for m in names if m not in known})
    if unknown:
        raise ValueError(f"no encoder for modality {', '.join(unknown)} (this network has: {', '.join(known)})")
    encoders = {m: graph(f"chartsias-encoder-{m}") for m in set(names)}
    decoder = graph("chartsias-decoder")

    def forward(x: np.ndarray) -> np.ndarray:
        h, w = x.shape[-2:]
        pad = [(0, 0)] * (x.ndim - 2) + [(0, (-h) % CHARTSIAS_MULTIPLE), (0, (-w) % CHARTSIAS_MULTIPLE)]
        x = np.pad(x, pad)
        fused: np.ndarray | None = None
        for modality, encode in encoders.items():
            latents = encode(x[[i for i, m in enumerate(names) if m == modality]]).max(axis=0)
            fused = latents if fused is None else np.maximum(fused, latents)
        assert fused is not None  # at least one input
        return decoder(fused)[..., :h, :w]

    return forward


def chartsias_fuse(stack: np.ndarray, modalities: Sequence[str], mode: str) -> np.ndarray:
    """chartsias over a slice batch or tri-planarly, inputs by their modalities."""
    return batching.run_2d(chartsias_forward(modalities, stack.shape[0]), stack, mode)
