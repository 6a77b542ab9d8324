"""Importing this package registers every shipped fusion method (one file per method).

``DEFAULT_METHOD`` names the method used when the user names none: the best one we ship, chosen by the
held-out evaluation in ``docs/deep-fusion.md`` (section "Default method").
"""

from MedFusionLib.fusion.methods import (  # noqa: F401  # noqa: F401  (deep methods; weights load lazily)  # noqa: F401  (deep fusion part 2)
    ddcgan_lite,
    decision_map_cnn,
    deep_feature_weighting,
    deep_features,
    densefuse,
    densefuse_lite,
    guided_filter,
    ifcnn,
    ifcnn_lite,
    laplacian_pyramid,
    maximum,
    mean,
    multi_encoder,
)

DEFAULT_METHOD = "ifcnn-lite"
