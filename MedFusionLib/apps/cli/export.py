"""``medfusion export NAME [NAME ...] | --all``: write the ONNX graphs the fusion methods run, from the torch
weights in ``MedFusionLib/weights/`` (needs the ``train`` extra: torch and onnxscript)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write the ONNX graph of shipped networks from their torch weights (needs torch)",
        description="Regenerates weights/NAME.onnx from its weights (weights/NAME.pt, or the network it is a part of), checked against torch on a test input.",
    )
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="graph or weight file names (chartsias: its encoders and decoder)"
    )
    p.add_argument("--all", action="store_true", help="every network that has an ONNX export")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from MedFusionLib.core.errors import MedFusionError

    try:
        from MedFusionLib.inference.onnx_export import GRAPHS, export_graph, graphs_of
    except ImportError as error:
        raise MedFusionError(f"export needs torch and onnxscript ('pip install medfusion[train]'): {error}") from None
    names = list(GRAPHS) if args.all else args.names
    if not names:
        raise MedFusionError("name a network to export, or --all")
    for name in [graph for name in names for graph in (graphs_of(name) if name not in GRAPHS else []) or [name]]:
        print(f"exported {name}: {export_graph(name)}", flush=True)
    return 0
