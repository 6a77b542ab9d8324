"""max-residual-cnn (formerly ``ifcnn-lite``): pixel-wise max plus a small learned residual; 2-D and 3-D forms.

Renamed in issue 15 for what it is: 89 (2-D) / 553 (3-D) trained parameters whose output stays within about half a
grey level of max fusion. Kept for comparison; the default is ``fusion-unet``.

* slice mode: the 2-D network (weights ``max-residual-cnn.pt``, trained on Harvard slice pairs);
* volume mode: the 3-D network (3x3x3 convolutions, weights ``max-residual-cnn-3d.pt``, trained self-supervised on
  3-D patches of aligned volume pairs), run in overlapping tiles so memory stays bounded.

The element-wise fusion rule of the feature maps (max, as trained; mean or sum selectable) can be changed
through :func:`fuse`. See ``MedFusionLib/networks/max_residual_cnn.py`` and the model cards in ``weights/``.
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import declare_method

NAME = "max-residual-cnn"
WEIGHTS_2D = "max-residual-cnn"
WEIGHTS_3D = "max-residual-cnn-3d"


def fuse(stack: np.ndarray, mode: str = "slice", rule: str | None = None) -> np.ndarray:
    """Fuse ``stack``: (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume mode; 0..1 float32."""
    from MedFusionLib.inference import batching, onnx_runtime

    if rule is None and mode == "slice":  # the shipped rule: the ONNX graphs, no torch
        return batching.run_slices(onnx_runtime.network_forward(WEIGHTS_2D), stack)
    if rule is None and onnx_runtime.has_graph(WEIGHTS_3D):
        halo = int(onnx_runtime.graph_metadata(WEIGHTS_3D)[onnx_runtime.RADIUS_KEY]) + 1
        return batching.run_tiled_3d(onnx_runtime.network_forward(WEIGHTS_3D), stack, halo=halo)
    from MedFusionLib.inference.runtime import load_network, run_slices, run_tiled_3d  # another rule: torch

    if mode == "slice":
        net = load_network(WEIGHTS_2D)
        return run_slices(lambda x: net(x, rule), stack)
    net = load_network(WEIGHTS_3D)
    return run_tiled_3d(lambda x: net(x, rule), stack, halo=int(net.receptive_radius) + 1)


declare_method(
    fuse,
    weights=WEIGHTS_2D,
    name=NAME,
    family="cnn",
    description="Pixel-wise max plus a small learned residual (89 parameters; formerly ifcnn-lite): IFCNN-style shared 3x3 features, element-wise max, reconstruction head added to the max of the inputs.",
    inputs="n",
    volume_note="True 3-D network (3x3x3 convolutions) trained on 3-D patches, run in overlapping tiles.",
    paper="our own design, after IFCNN's shared extractor and element-wise max (Zhang et al. 2020): a small residual on pixel-wise max",
    references=("Zhang et al., IFCNN, Information Fusion 54, 2020",),
)
