"""Export of the shipped torch networks to ONNX graphs (``weights/<name>.onnx``), the fusion methods' runtime.

:data:`GRAPHS` names each exported network with what its graph needs: the number of inputs when the network
fixes it (DDcGAN's two), 2-D or 3-D, and the multiple its sides are padded to. :func:`export_graph` traces the
network with ``torch.export`` (dynamic inputs, batch and sides), writes the graph with its metadata atomically
beside the weights, and checks that ONNX Runtime reproduces the torch output on a test input. ``medfusion
export NAME|--all`` calls it, and so does training where it saves weights (:func:`export_after_training`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.inference.modality_codes import modality_codes
from MedFusionLib.inference.onnx_runtime import (
    INPUT_NAME,
    MODALITIES_NAME,
    OUTPUT_NAME,
    PAD_KEY,
    RADIUS_KEY,
    session_forward,
)
from MedFusionLib.inference.runtime import load_network
from MedFusionLib.inference.weights import weight_path

OPSET = 18
NETWORK_SETTINGS = ("smooth_sigma", "levels", "patch", "stride")  # what the numpy post-processing reads back
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class GraphSpec:
    """What the graph of one network needs: ``inputs`` fixed (None: any number >= ``min_inputs``),
    ``spatial_dims``; for a network part (``part``, a module built around the loaded network, from
    ``inference/export_parts.py``) the weight file it comes from (``weights``), the channels of its input (a
    decoder's latent: ``channels``, and no inputs axis) and the pad multiple written for it (``pad``)."""

    inputs: int | None = None
    spatial_dims: int = 2
    weights: str | None = None
    part: Callable[[torch.nn.Module], torch.nn.Module] | None = None
    min_inputs: int = 2
    channels: int = 0
    pad: int | None = None

    def source(self, name: str) -> str:
        """The weight file (``weights/<source>.pt``) the graph ``name`` is exported from."""
        return self.weights or name


def _part(factory: str, *args: str) -> Callable[[torch.nn.Module], torch.nn.Module]:
    def build(net: torch.nn.Module) -> torch.nn.Module:
        from MedFusionLib.inference import export_parts

        return getattr(export_parts, factory)(net, *args)

    return build


def _chartsias_graphs() -> dict[str, GraphSpec]:
    from MedFusionLib.networks.chartsias import MODALITIES

    encoders = {
        f"chartsias-encoder-{m}": GraphSpec(weights="chartsias", part=_part("ChartsiasEncoder", m), min_inputs=1, pad=1)
        for m in MODALITIES
    }
    return {
        **encoders,
        "chartsias-decoder": GraphSpec(weights="chartsias", part=_part("ChartsiasDecoder"), channels=16),
    }


GRAPHS: dict[str, GraphSpec] = {
    "fusion-unet": GraphSpec(),
    "max-residual-cnn": GraphSpec(),
    "max-residual-cnn-3d": GraphSpec(spatial_dims=3),
    "ifcnn": GraphSpec(),
    "densefuse": GraphSpec(),
    "ddcgan": GraphSpec(inputs=2),
    "decision-map-cnn": GraphSpec(part=_part("DecisionWeights")),
    "deep-feature-weighting": GraphSpec(weights="densefuse-lite", part=_part("ActivityWeights")),
    "deep-features": GraphSpec(weights="densefuse", part=_part("DeepFeaturesRule")),
    "liu-cnn": GraphSpec(inputs=2, part=_part("LiuWeights"), pad=1),
    **_chartsias_graphs(),
}


class _DefaultForward(torch.nn.Module):
    """The network's forward with its shipped options (rule, strategy) and no Python-side hooks."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


class _ModalityAwareForward(_DefaultForward):
    """The forward of a modality-aware network: the inputs and their modality codes (n_inputs, classes)."""

    def forward(self, inputs: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net(inputs, modalities)


EXAMPLE_MODALITIES = (("ct", "mr"), ("pet", None))  # the test inputs' modalities (seed 0, seed 1): one not known


def _example_args(spec: GraphSpec, aware: bool, seed: int = 0) -> tuple[tuple[torch.Tensor, ...], tuple | None]:
    """The test input (:func:`_example`) as the graph's arguments, with modality codes for a modality-aware
    network; and the modalities those codes stand for (None for a modality-blind network)."""
    example = _example(spec, seed)
    if not aware:
        return (example,), None
    names = EXAMPLE_MODALITIES[seed % len(EXAMPLE_MODALITIES)][: example.shape[0]]
    return (example, torch.from_numpy(modality_codes(names))), names


def _example(spec: GraphSpec, seed: int = 0) -> torch.Tensor:
    """A fixed test input: 2 inputs (or the graph's number), 2 slices of 64 x 48 (a 24 x 32 x 40 volume); for a
    decoder, 2 latents of 64 x 48."""
    generator = torch.Generator().manual_seed(seed)
    spatial = (64, 48) if spatial_dims_2d(spec) else (24, 32, 40)
    batch = 2 if spatial_dims_2d(spec) else 1
    if spec.channels:
        return torch.rand((batch, spec.channels, *spatial), generator=generator)
    return torch.rand((spec.inputs or 2, batch, 1, *spatial), generator=generator)


def spatial_dims_2d(spec: GraphSpec) -> bool:
    return spec.spatial_dims == 2


def _dynamic_shapes(spec: GraphSpec, aware: bool = False) -> dict:
    dim = torch.export.Dim
    if spec.channels:  # a decoder: (batch, channels, H, W)
        return {"inputs": {0: dim("batch"), 2: dim("height"), 3: dim("width")}}
    shape: dict[int, object] = {} if spec.inputs else {0: dim("n_inputs", min=spec.min_inputs, max=64)}
    if spatial_dims_2d(spec):
        shape.update({1: dim("batch"), 3: dim("height"), 4: dim("width")})
    else:
        shape.update({3: dim("depth"), 4: dim("height"), 5: dim("width")})
    if aware:  # one code per input: the same (dynamic) number of inputs
        return {"inputs": shape, "modalities": {0: shape[0]} if 0 in shape else {}}
    return {"inputs": shape}


def export_graph(name: str, weights: str | Path | None = None, out: str | Path | None = None) -> Path:
    """Write the ONNX graph of network ``name`` (weights ``weights``, default the shipped ``.pt``) to ``out``
    (default: beside the weights), checked against torch to :data:`PARITY_TOLERANCE`; returns its path."""
    spec = GRAPHS.get(name)
    if spec is None:
        raise MedFusionError(f"no ONNX export for {name!r} (exported: {', '.join(GRAPHS)})")
    source = Path(weights) if weights else weight_path(spec.source(name))
    target = Path(out) if out else source.with_name(name + ".onnx")
    net = load_network(spec.source(name), str(source))
    aware = bool(getattr(net, "modality_classes", 0)) and spec.part is None
    forward_class = _ModalityAwareForward if aware else _DefaultForward
    wrapper = (spec.part(net) if spec.part else forward_class(net)).eval()
    example, _ = _example_args(spec, aware)
    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            example,
            dynamo=True,
            input_names=[INPUT_NAME, MODALITIES_NAME] if aware else [INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=_dynamic_shapes(spec, aware),
            opset_version=OPSET,
            verbose=False,  # no progress lines on stdout: `medfusion train --json` prints JSON only
            optimize=False,  # BatchNorm stays apart from the convolutions: their weights stay float16-exact (ONNX Runtime fuses them at load)
        )
    if program is None:
        raise MedFusionError(f"{name}: torch.onnx.export returned no program")
    program.model.metadata_props.update(
        {
            PAD_KEY: str(spec.pad or getattr(net, "patch", 1)),
            RADIUS_KEY: str(getattr(net, "receptive_radius", 0)),
            "medfusion.network": type(net).__name__,
            "medfusion.weights_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            **{f"medfusion.{key}": str(getattr(net, key)) for key in NETWORK_SETTINGS if hasattr(net, key)},
        }
    )
    _save_checked(program, target, wrapper, *_example_args(spec, aware, seed=1))
    return target


def _save_checked(
    program, target: Path, wrapper: torch.nn.Module, test: tuple[torch.Tensor, ...], modalities: tuple | None
) -> None:
    """Save to a temporary file beside ``target``, compare ONNX Runtime with torch on ``test`` (the inputs and,
    for a modality-aware network, the codes of ``modalities``), rename."""
    from MedFusionLib.inference.onnx_runtime import load_session

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".onnx", dir=target.parent)
    os.close(handle)
    try:
        program.save(temporary, external_data=False)
        store_float16(temporary)
        strip_debug_info(temporary)
        with torch.no_grad():
            expected = wrapper(*test).numpy()
        got = session_forward(load_session(target.stem, temporary), modalities=modalities)(test[0].numpy())
        difference = float(np.abs(got - expected).max())
        if difference > PARITY_TOLERANCE:
            raise MedFusionError(f"{target.name}: ONNX output differs from torch by {difference:.2e}")
        os.chmod(temporary, 0o644)  # a shipped file, readable by all (mkstemp makes it private)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def store_float16(path: str | Path) -> int:
    """Store each float32 weight of the graph at ``path`` that float16 holds exactly (the shipped weights are
    float16) as float16 with a Cast back to float32 at load: half the file, the same numbers. Returns how many."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts, kept = [], []
    for tensor in graph.initializer:
        values = numpy_helper.to_array(tensor)
        half = values.astype(np.float16)
        if values.dtype != np.float32 or values.size < 16 or not np.array_equal(half.astype(np.float32), values):
            kept.append(tensor)
            continue
        kept.append(numpy_helper.from_array(half, tensor.name + "_float16"))
        casts.append(
            onnx.helper.make_node("Cast", [tensor.name + "_float16"], [tensor.name], to=onnx.TensorProto.FLOAT)
        )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(path))
    return len(casts)


def graphs_of(weights_name: str) -> list[str]:
    """The graphs exported from weight file ``weights_name`` (e.g. chartsias's five, densefuse's two)."""
    return [name for name, spec in GRAPHS.items() if spec.source(name) == weights_name]


def strip_debug_info(path: str | Path) -> None:
    """Drop what the exporter records for debugging (each node's torch stack trace and names, the intermediate
    shapes): up to four fifths of a small graph's file, nothing ONNX Runtime reads."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.value_info[:]
    onnx.save(model, str(path))


def export_after_training(name: str, weights: str | Path) -> list[Path]:
    """The one line training calls after saving ``weights`` of network ``name``: every graph made from them,
    beside them (:func:`graph_file`); returns their paths (none: nothing is exported from this network)."""
    return [export_graph(graph, weights, graph_file(graph, name, weights)) for graph in graphs_of(name)]


def graph_file(graph: str, name: str, weights: str | Path) -> Path:
    """Where training writes graph ``graph`` of network ``name`` saved as ``weights``: ``<graph>.onnx`` when the
    weights have their network's name (the installed layout the methods read), else named after the weights
    (``w.pt``: ``w.onnx``, ``w-encoder-ct.onnx``, ``w-deep-features.onnx``)."""
    path = Path(weights)
    if path.stem == name:
        return path.with_name(graph + ".onnx")
    if graph == name or graph.startswith(name + "-"):
        return path.with_name(path.stem + graph[len(name) :] + ".onnx")
    return path.with_name(f"{path.stem}-{graph}.onnx")
