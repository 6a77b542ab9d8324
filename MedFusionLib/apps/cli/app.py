"""``medfusion app``: the MedFusion panel in a browser (trame-slicer; needs the ``web`` extra)."""

from __future__ import annotations

import argparse

from MedFusionLib.apps.web.security import DEFAULT_MAX_UPLOAD_MB
from MedFusionLib.core.errors import MedFusionError


def add_parser(sub) -> None:
    p = sub.add_parser("app", help="open the MedFusion panel in a browser (Slicer's views, served locally)")
    p.add_argument("files", nargs="*", metavar="FILE", help="volumes to open (the first is the reference)")
    p.add_argument(
        "--sample", action="store_true", help="open the embedded CT/MR/PET phantom (the default when no FILE is given)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=port_number, default=8080, help="port to listen on (default: 8080)")
    p.add_argument(
        "--root",
        default=None,
        metavar="DIR",
        help="the only folder the page may open files from or save into (default: the current folder); "
        "FILEs given here are opened wherever they are",
    )
    p.add_argument(
        "--token",
        default=None,
        help="access token every request must carry (default: a random one for a non-loopback --host, "
        "printed in the URL; none on 127.0.0.1)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest file the page may upload, in MB (default: {DEFAULT_MAX_UPLOAD_MB})",
    )
    p.set_defaults(func=run)


def port_number(text: str) -> int:
    """A TCP port, 1..65535 (a one-line usage error otherwise)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 1..65535")
    return port


def run(args: argparse.Namespace) -> int:
    try:
        from MedFusionLib.apps.web.app import serve
    except ImportError as err:
        raise MedFusionError(f"the web app needs the 'web' extra (pip install -e \".[web]\"): {err}") from None
    server_options = ("host", "port", "sample", "root", "token", "max_upload_mb")  # serve()'s keywords, as parsed
    return serve(args.files, **{name: getattr(args, name) for name in server_options})
