"""Importing this package registers every shipped fusion method (one file per method).

``DEFAULT_METHOD`` names the method used when the user names none: the best one we ship, chosen by the
held-out evaluation in ``docs/deep-fusion.md`` (section "Default method").
"""

# importing a method's file registers it (deep methods load their weights lazily, on first use)
from MedFusionLib.fusion.methods import (  # noqa: F401
    chartsias,
    ddcgan,
    decision_map_cnn,
    deep_feature_weighting,
    deep_features,
    densefuse,
    fusion_unet,
    guided_filter,
    ifcnn,
    laplacian_pyramid,
    liu_cnn,
    max_residual_cnn,
    maximum,
    mean,
)

DEFAULT_METHOD = "fusion-unet"
