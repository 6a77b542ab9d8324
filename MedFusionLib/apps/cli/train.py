"""``medfusion train METHOD --data DIR [--out WEIGHTS] ...``: train a deep method's network (writes its weights and,
for the networks the methods run in ONNX Runtime, the ONNX graph beside them)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from MedFusionLib.training.recipes import RECIPES


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a deep fusion method's network (writes a compact weight file)",
        description="Train one of: " + ", ".join(f"{n} ({r.description})" for n, r in RECIPES.items()),
    )
    p.add_argument("method", choices=sorted(RECIPES), help="recipe / weight name")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="recipe overrides, right after METHOD: a key of the recipe's network config or of its loss arguments (e.g. adv_weight=0 "
        "for ddcgan's content-only ablation); VALUE is read as JSON (numbers, true/false, lists), else as a string",
    )
    p.add_argument("--data", required=True, help="folder holding harvard/ and volumes/ (e.g. ../shared/data)")
    p.add_argument(
        "--out", default=None, help="weight file to write (default: out/weights/METHOD.pt under the current folder)"
    )
    p.add_argument(
        "--install",
        action="store_true",
        help="write into the installed package's weights (MedFusionLib/weights/METHOD.pt, or --out there): "
        "replaces the method for everyone using this environment",
    )
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared 2-core machine one thread trains these small networks fastest)",
    )
    p.add_argument(
        "--checkpoint-dir", default=None, help="where last.pt is written each epoch (default out/training/METHOD)"
    )
    p.add_argument("--resume", default=None, metavar="CKPT", help="continue from a checkpoint written by this command")
    p.add_argument("--validate-every", type=int, default=5)
    p.add_argument(
        "--train-split",
        choices=("train", "fit"),
        default="train",
        help="train: all training cases, validated on the held-out cases (shipped weights); fit: the training "
        "cases less the model-selection cases, validated on those (for comparing recipes)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)
    return p


def parse_overrides(method: str, items: list[str]) -> tuple[dict, dict]:
    """``KEY=VALUE`` items -> (network config overrides, loss argument overrides) of ``method``'s recipe.

    A key of the recipe's ``config`` overrides the network; any other key a loss argument.
    """
    from MedFusionLib.core.errors import MedFusionError

    config: dict[str, object] = {}
    loss: dict[str, object] = {}
    recipe = RECIPES[method]
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise MedFusionError(f"recipe override {item!r} is not KEY=VALUE")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        (config if key in recipe.config else loss)[key] = value
    return config, loss


def run(args: argparse.Namespace) -> int:
    from MedFusionLib.training import train

    config_overrides, loss_overrides = parse_overrides(args.method, args.overrides)

    as_parsed = [
        *("out", "epochs", "seed", "steps_per_epoch", "batch", "lr", "checkpoint_dir", "resume", "threads"),
        *("validate_every", "train_split", "install"),
    ]  # train()'s keywords that the command's options carry unchanged
    result = train(
        args.method,
        args.data,
        **{name: getattr(args, name) for name in as_parsed},
        config_overrides=config_overrides or None,
        loss_overrides=loss_overrides or None,
        command="medfusion " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    from MedFusionLib.inference.onnx_export import export_after_training

    graphs = export_after_training(args.method, result["weights"])  # the ONNX graphs beside the weights
    result["onnx"] = [str(graph) for graph in graphs]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['weights']}: {result['final']} ({result['train_seconds']:.0f} s)")
    return 0
