"""Importing this package registers every shipped fusion method (one file per method).

``DEFAULT_METHOD`` names the method used when the user names none. ``fusion-unet`` was chosen among its own
training recipes on the model-selection cases (``--split select``; ``docs/evaluation.md``) and scored once on the
held-out cases afterwards; on 2026-12-07 its weights were retrained with slices of real volumes and a loss against
invented brightness (``docs/deep-fusion.md``, "Real volumes"): 6 of 24 2-D held-out cells won against pixel max (the
former weights, 12, washed real volumes out). It is not the best method by every measure: in the 16-metric study of the held-out cases (``docs/study.md``) ``decision-map-cnn`` has more wins
against max (9 / 2 / 5 against the default's 6 / 1 / 9), as do ``guided-filter`` and ``liu-cnn``.
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
