"""Training recipe of the decision-map CNN (``medfusion train decision-map-cnn --data ../shared/data``).

The decision-map network trains in part 1's ordinary loop (:func:`MedFusionLib.training.trainer.train`): its
forward pass already ends in the fixed post-processing and the pyramid blending of the source pixels, so the
unsupervised fusion loss (SSIM + gradient + intensity, ``losses.FusionLoss``) is applied to the blended image
and its gradient reaches the weight maps through the blend. No labels, no decision-map ground truth.
Importing this module adds the recipe to :data:`MedFusionLib.training.recipes.RECIPES`.
"""

from __future__ import annotations

from ..networks import decision_map as _network  # noqa: F401  (registers DecisionMapNet for build_network)
from .recipes import RECIPES, Recipe

RECIPE = Recipe(
    name="decision-map-cnn",
    network="DecisionMapNet",
    config=dict(spatial_dims=2, channels=12, dilations=(1, 2, 4), smooth_sigma=2.0, levels=4),
    data="pairs",
    loss="fusion",
    loss_args=dict(w_ssim=1.0, w_grad=4.0, w_int=1.0),
    epochs=15,
    steps_per_epoch=40,
    batch=8,
    crop=128,
    lr=2e-3,
    description="2-D decision-map CNN on Harvard slice pairs: weight maps trained through the pyramid blend with the unsupervised SSIM + gradient + intensity loss",
)

RECIPES.setdefault(RECIPE.name, RECIPE)
