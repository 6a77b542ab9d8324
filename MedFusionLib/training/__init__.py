"""Training of MedFusion's deep fusion networks: data (by-case split), losses, recipes, trainer.

Python API: ``train(method, data_dir, out=None, epochs=None, seed=0, ...)``; CLI:
``medfusion train METHOD --data DIR [--out WEIGHTS] [--epochs N] [--resume CKPT]``. Importing this package
does not import torch (the ``medfusion`` command registers ``train`` without paying for it); the trainer
and its loops load on the first call.
"""

from MedFusionLib.training.recipes import RECIPES


def train(method: str, data_dir, **options) -> dict:
    """Train ``method``'s recipe: the adversarial, multi-input and patch-classifier methods with their own loops, every other
    recipe with :func:`MedFusionLib.training.trainer.train` (see it for the options)."""
    from MedFusionLib.training import adversarial, chartsias, patch_classifier, trainer

    custom = {name: adversarial.train_adversarial for name in adversarial.ADVERSARIAL}
    custom[chartsias.RECIPE.name] = chartsias.train_chartsias
    custom[patch_classifier.RECIPE.name] = patch_classifier.train_patch_classifier
    if method in custom:
        opts = trainer.TrainOptions(out=options.pop("out", None), **options)
        return custom[method](method, data_dir, opts)
    return trainer.train(method, data_dir, **options)


__all__ = ["RECIPES", "train"]
