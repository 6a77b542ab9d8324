"""``medfusion methods [--json]``: the fusion methods of the registry."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("methods", help="list the fusion methods")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from MedFusionLib.fusion import describe_methods

    methods = describe_methods()
    if args.json:
        print(json.dumps([{k: m[k] for k in ("name", "family", "modes", "inputs", "default")} for m in methods]))
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
