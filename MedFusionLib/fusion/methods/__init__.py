"""Importing this package registers every shipped fusion method (one file per method).

``DEFAULT_METHOD`` names the method used when the user names none: the best one we ship, chosen by the
held-out evaluation in ``docs/deep-fusion.md`` (section "Default method").
"""

from MedFusionLib.fusion.methods import guided_filter, laplacian_pyramid, maximum, mean  # noqa: F401
from MedFusionLib.fusion.methods import densefuse_lite, ifcnn_lite  # noqa: F401  (deep methods; weights load lazily)
from MedFusionLib.fusion.methods import ddcgan_lite, decision_map_cnn, deep_feature_weighting, multi_encoder  # noqa: F401  (deep fusion part 2)

DEFAULT_METHOD = "ifcnn-lite"
