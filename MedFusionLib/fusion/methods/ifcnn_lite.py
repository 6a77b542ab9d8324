"""IFCNN-lite: end-to-end fusion CNN (IFCNN family), trained by us; 2-D and true 3-D forms.

* slice mode: the 2-D network (weights ``ifcnn-lite.pt``, trained on Harvard slice pairs);
* volume mode: the 3-D network (3x3x3 convolutions, weights ``ifcnn-lite-3d.pt``, trained self-supervised on
  3-D patches of aligned volume pairs), run in overlapping tiles so memory stays bounded.

The element-wise fusion rule of the feature maps (max, as trained; mean or sum selectable) can be changed
through :func:`fuse`. See ``MedFusionLib/networks/ifcnn_lite.py`` and the model cards in ``weights/``.
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import FusionMethod, register_method

NAME = "ifcnn-lite"
WEIGHTS_2D = "ifcnn-lite"
WEIGHTS_3D = "ifcnn-lite-3d"


def fuse(stack: np.ndarray, mode: str = "slice", rule: str | None = None) -> np.ndarray:
    """Fuse ``stack``: (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume mode; 0..1 float32."""
    from MedFusionLib.inference.runtime import (
        load_network,
        run_slices,
        run_tiled_3d,  # torch is imported on first use only
    )

    if mode == "slice":
        net = load_network(WEIGHTS_2D)
        return run_slices(lambda x: net(x, rule), stack)
    net = load_network(WEIGHTS_3D)
    return run_tiled_3d(lambda x: net(x, rule), stack, halo=net.receptive_radius + 1)


register_method(
    FusionMethod(
        name=NAME,
        family="cnn",
        description="IFCNN-lite: light end-to-end fusion CNN (shared 3x3 feature convolutions, element-wise max, reconstruction), trained by MedFusion.",
        fuse_slices=lambda stack: fuse(stack, "slice"),
        fuse_volume=lambda stack: fuse(stack, "volume"),
        inputs="n",
        volume_note="True 3-D network (3x3x3 convolutions) trained on 3-D patches, run in overlapping tiles.",
        references=("Zhang et al., IFCNN, Information Fusion 54, 2020",),
    )
)
