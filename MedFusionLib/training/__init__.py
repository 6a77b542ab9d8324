"""Training of MedFusion's deep fusion networks: data (by-case split), losses, recipes, trainer.

Python API: ``train(method, data_dir, out=None, epochs=None, seed=0, ...)``; CLI:
``medfusion train METHOD --data DIR [--out WEIGHTS] [--epochs N] [--resume CKPT]``. Importing this package
does not import torch (the ``medfusion`` command registers ``train`` without paying for it); the trainer
and its loops load on the first call.
"""

from MedFusionLib.training.recipes import RECIPES


def train(method: str, data_dir, **options) -> dict:
    """Train ``method``'s recipe; see :func:`MedFusionLib.training.trainer.train` for the options."""
    from MedFusionLib.training.trainer import train as run

    return run(method, data_dir, **options)


__all__ = ["RECIPES", "train"]
