"""Training of MedFusion's deep fusion networks: data (by-case split), losses, trainer, CLI.

Python API: ``train(method, data_dir, out=None, epochs=None, seed=0, ...)``; CLI:
``medfusion train METHOD --data DIR [--out WEIGHTS] [--epochs N] [--resume CKPT]``.
"""

from .cli import register_cli
from .recipes import RECIPES
from .trainer import train
from . import adversarial, decision_map, multi_encoder  # noqa: F401,E402  (part 2 recipes and loops register themselves)

__all__ = ["RECIPES", "register_cli", "train"]
