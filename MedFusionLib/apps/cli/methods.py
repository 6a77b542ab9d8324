"""``medfusion methods [--json]``: the fusion methods of the registry.

JSON: a list of ``{"name", "family", "modes", "min_inputs", "max_inputs", "default", "paper", "parameters",
"paper_parameters"}``; ``max_inputs`` is null for methods that take any number of inputs from ``min_inputs`` up;
``parameters`` counts the shipped weights (0: classical); ``paper_parameters`` the paper's network at our grey
input (null where no published network is reproduced)."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("methods", help="list the fusion methods")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from MedFusionLib.fusion import describe_methods

    methods = describe_methods(with_parameters=args.json)
    if args.json:  # inputs as numbers: min_inputs, and max_inputs (null = no upper limit)
        rows = [
            {
                "name": m["name"],
                "family": m["family"],
                "modes": m["modes"],
                "min_inputs": 2 if m["inputs"] == "n" else int(m["inputs"]),
                "max_inputs": None if m["inputs"] == "n" else int(m["inputs"]),
                "default": m["default"],
                "paper": m["paper"],  # the published architecture a deep method reproduces or derives from
                "parameters": m["parameters"],  # trainable parameters of the shipped weights (0: classical)
                "paper_parameters": m["paper_parameters"],  # the paper's network, where one is reproduced
            }
            for m in methods
        ]
        print(json.dumps(rows))
        return 0
    name_w = max(len(m["name"]) for m in methods) + 1
    family_w = max(len(m["family"]) for m in methods)
    print(f"{'method':<{name_w}} {'family':<{family_w}} {'modes':<13} {'inputs':<6} description")
    for m in methods:
        name = m["name"] + ("*" if m["default"] else "")
        print(
            f"{name:<{name_w}} {m['family']:<{family_w}} {','.join(m['modes']):<13} {str(m['inputs']):<6} "
            f"{m['description']}"
        )
    print("* default method")
    return 0
