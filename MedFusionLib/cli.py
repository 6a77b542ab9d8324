"""The ``medfusion`` command: methods, register, fuse, batch, metrics, demo (and train, compare).

User errors print one line (``medfusion: error: <file>: <problem>``) and exit non-zero without a traceback;
``--debug`` shows the traceback. Every output is written atomically, so an error or Ctrl-C leaves no
half-written file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from . import __version__
from .errors import MedFusionError, OperationCancelled

EXIT_USER_ERROR = 2
EXIT_CANCELLED = 130


class ProgressBar:
    """A tqdm bar fed by the library's ``progress(fraction, message)`` callbacks (silent when not a TTY)."""

    def __init__(self, description: str):
        from tqdm import tqdm

        self._bar = tqdm(total=1000, desc=description, file=sys.stderr, disable=None, leave=False,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def __call__(self, fraction: float, message: str) -> None:
        self._bar.n = int(fraction * 1000)
        self._bar.set_postfix_str(message[:60], refresh=True)

    def close(self) -> None:
        self._bar.close()


def _add_fusion_options(parser: argparse.ArgumentParser, with_axis: bool = True) -> None:
    from .pipeline import REGISTRATION_CHOICES

    parser.add_argument("--method", help="fusion method (see 'medfusion methods'; default: the best shipped)")
    parser.add_argument("--mode", choices=("slice", "volume"), default="slice",
                        help="slice: 2-D method over the slices of --axis; volume: the method's 3-D form")
    if with_axis:
        parser.add_argument("--axis", type=int, choices=(0, 1, 2), default=2,
                            help="image axis cut by slice mode: 0=i (x), 1=j (y), 2=k (z, axial; default)")
    parser.add_argument("--register", choices=REGISTRATION_CHOICES, default="none",
                        help="align inputs 2.. to the first before fusing (default: none, header geometry)")
    parser.add_argument("--modality", action="append", metavar="NAME",
                        help="intensity rule per input in order (auto, ct, mr, pet, spect, 8bit); repeat per input")
    parser.add_argument("--colour", default="none", metavar="MAP",
                        help="RGB output, functional colour over the fused image: auto (the functional input's own "
                             "colours, or the PET map), or a map: hot, pet, rainbow (default: none, grey output)")
    parser.add_argument("--functional", type=int, metavar="N",
                        help="1-based index of the functional (PET/SPECT) input for --colour (default: the colour "
                             "input, else the last)")


# ---------------------------------------------------------------------------------------------- methods
def cmd_methods(args: argparse.Namespace) -> int:
    from .fusion import describe_methods

    methods = describe_methods()
    if args.json:
        print(json.dumps([{k: m[k] for k in ("name", "family", "modes", "inputs", "default")} for m in methods]))
        return 0
    name_w = max(len(m["name"]) for m in methods) + 1
    family_w = max(len(m["family"]) for m in methods)
    print(f"{'method':<{name_w}} {'family':<{family_w}} {'modes':<13} {'inputs':<6} description")
    for m in methods:
        name = m["name"] + ("*" if m["default"] else "")
        print(f"{name:<{name_w}} {m['family']:<{family_w}} {','.join(m['modes']):<13} {str(m['inputs']):<6} {m['description']}")
    print("* default method")
    return 0


# --------------------------------------------------------------------------------------------- register
def cmd_register(args: argparse.Namespace) -> int:
    from .io import load_for_fusion, write_image
    from .pipeline import check_output_path
    from .registration import register, resample_to_fixed, save_transform

    fixed, moving = load_for_fusion(args.fixed), load_for_fusion(args.moving)
    if not Path(args.output).parent.is_dir() and str(Path(args.output).parent):
        raise MedFusionError(f"{args.output}: output folder {Path(args.output).parent} does not exist")
    if args.resampled:
        check_output_path(args.resampled, fixed.GetDimension())
    bar = ProgressBar("register")
    try:
        result = register(fixed, moving, args.mode, progress=bar)
    finally:
        bar.close()
    save_transform(result.transform, args.output)
    print(result.summary())
    print(f"transform (fixed -> moving points, ITK convention): {args.output}")
    if args.resampled:
        write_image(resample_to_fixed(fixed, moving, result.transform), args.resampled)
        print(f"resampled moving image: {args.resampled}")
    return 0


# ------------------------------------------------------------------------------------------------- fuse
def _fuse_to_files(inputs: Sequence[str], output: str, args: argparse.Namespace, metrics_path=None,
                   preview_path=None, progress=None, want_metrics: bool = False):
    """Load, fuse, write the fused image (and metrics/preview); returns (result, metrics dict or None)."""
    from .io import as_scalar, check_values, read_image, write_image
    from .pipeline import check_output_path, fuse_images, write_json

    images = [read_image(path) for path in inputs]
    for path, image in zip(inputs, images):
        check_values(as_scalar(image, path), path)
    check_output_path(output, images[0].GetDimension())
    for extra in (metrics_path, preview_path):
        if extra and not (Path(extra).parent if str(Path(extra).parent) else Path(".")).is_dir():
            raise MedFusionError(f"{extra}: output folder {Path(extra).parent} does not exist")
    result = fuse_images(images, method=args.method, mode=args.mode, axis=getattr(args, "axis", 2),
                         registration=args.register, modalities=args.modality, colour=args.colour,
                         functional=None if args.functional is None else args.functional - 1, progress=progress)
    metrics = result.metrics() if (metrics_path or want_metrics) else None
    write_image(result.colour_fused if result.colour_fused is not None else result.fused, output)
    if metrics_path:
        write_json(metrics, metrics_path)
    if preview_path:
        from .preview import write_preview

        import SimpleITK as sitk

        labels = [Path(p).name for p in inputs] + [f"fused ({result.method}, {result.mode})"]
        shown = result.fused_array if result.colour_fused is None else sitk.GetArrayFromImage(result.colour_fused)
        write_preview(result.sources + [shown], labels, preview_path, images[0].GetSpacing())
    return result, metrics


def cmd_fuse(args: argparse.Namespace) -> int:
    bar = ProgressBar("fuse")
    try:
        result, metrics = _fuse_to_files(args.inputs, args.output, args, args.metrics, args.preview, progress=bar)
    finally:
        bar.close()
    for registration in result.registrations:
        if registration is not None:
            print(registration.summary())
    print(f"fused ({result.method}, {result.mode} mode): {args.output}")
    if args.metrics:
        print(f"metrics: {args.metrics}")
    if args.preview:
        print(f"preview: {args.preview}")
    return 0


# ------------------------------------------------------------------------------------------------ batch
def _read_manifest(path: Path) -> List[dict]:
    import csv

    if not path.is_file():
        raise MedFusionError(f"{path}: no such manifest file")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "a" not in rows[0] or "b" not in rows[0]:
        raise MedFusionError(f"{path}: manifest needs a header with columns a,b[,name] and at least one row")
    return rows


def _case_output(out_dir: Path, name: str, a_path: str) -> Path:
    from .io import extension

    ext = extension(a_path) if Path(a_path).suffix else ".nii.gz"  # a DICOM folder gives NIfTI
    return out_dir / f"{name}{ext}"


def cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .metrics import METRIC_KEYS

    manifest = Path(args.manifest)
    rows = _read_manifest(manifest)
    out_dir = Path(args.outdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records, failures = [], []
    for number, row in enumerate(tqdm(rows, desc="batch", file=sys.stderr, unit="case"), start=1):
        try:
            a, b = (row.get("a") or "").strip(), (row.get("b") or "").strip()
            if not a or not b:
                raise MedFusionError("row needs both a and b")
            paths = [str(p if Path(p).is_absolute() else manifest.parent / p) for p in (a, b)]
            name = (row.get("name") or "").strip() or Path(a).name.split(".")[0]
            _, metrics = _fuse_to_files(paths, str(_case_output(out_dir, name, a)), args, want_metrics=True)
        except MedFusionError as err:
            failures.append(f"row {number}: {err}")
            tqdm.write(f"medfusion: skipped row {number}: {err}", file=sys.stderr)
            continue
        records.append((name, metrics))
    return _finish_batch(out_dir, records, failures, len(rows), METRIC_KEYS)


def _finish_batch(out_dir: Path, records, failures, total: int, keys) -> int:
    import csv
    import io as text_io

    from .io import write_atomically

    columns = ["case"] + list(keys)
    for _, metrics in records:
        columns += [k for k in metrics if k not in columns and k != "protocol"]
    buffer = text_io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for name, metrics in records:
        writer.writerow([name] + [f"{metrics[k]:.6g}" if k in metrics else "" for k in columns[1:]])
    write_atomically(out_dir / "metrics.csv", lambda tmp: Path(tmp).write_text(buffer.getvalue()))
    print(f"{len(records)}/{total} cases fused into {out_dir}; metrics: {out_dir / 'metrics.csv'}")
    for failure in failures:
        print(f"failed: {failure}")
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------- metrics
def cmd_metrics(args: argparse.Namespace) -> int:
    import SimpleITK as sitk

    from .io import as_scalar, read_image
    from .metrics import format_table, score

    arrays = []
    for path in (args.a, args.b, args.f):
        arrays.append(sitk.GetArrayFromImage(as_scalar(read_image(path), path)).astype("float64"))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise MedFusionError(f"A, B and F must have the same size, got {[a.shape[::-1] for a in arrays]} (x, y[, z])")
    result = score(arrays[:2], arrays[2], axis=0)
    print(json.dumps(result, indent=2, allow_nan=False) if args.json else format_table(result))
    return 0


# ------------------------------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.out), method=args.method, mode=args.mode)


# ------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medfusion", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"medfusion {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("methods", help="list the fusion methods")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("register", help="register MOVING to FIXED and save the transform")
    p.add_argument("fixed")
    p.add_argument("moving")
    p.add_argument("-o", "--output", required=True, metavar="TRANSFORM.tfm")
    p.add_argument("--mode", choices=("rigid", "affine", "deformable"), default="rigid")
    p.add_argument("--resampled", metavar="OUT", help="also write MOVING resampled onto FIXED's grid")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("fuse", help="fuse images (the first is the reference grid)")
    p.add_argument("inputs", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    _add_fusion_options(p)
    p.add_argument("--metrics", metavar="OUT.json", help="write the metric values as JSON")
    p.add_argument("--preview", metavar="OUT.png", help="write a preview PNG")
    p.set_defaults(func=cmd_fuse)

    p = sub.add_parser("batch", help="fuse every row of a CSV manifest (columns a,b[,name])")
    p.add_argument("manifest", metavar="MANIFEST.csv")
    p.add_argument("outdir", metavar="OUTDIR")
    _add_fusion_options(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("metrics", help="score a fused image F against its sources A and B")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("f")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("demo", help="register and fuse an embedded CT/MR phantom with a known answer")
    p.add_argument("--out", default="medfusion-demo", help="output folder (default: ./medfusion-demo)")
    p.add_argument("--method", help="fusion method (default: the best shipped)")
    p.add_argument("--mode", choices=("slice", "volume"), default="slice")
    p.set_defaults(func=cmd_demo)

    for module_name in ("training", "compare"):  # optional command groups, each registering itself
        try:
            module = __import__(f"{__package__}.{module_name}", fromlist=["register_cli"])
        except ImportError:
            continue
        if hasattr(module, "register_cli"):
            module.register_cli(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except OperationCancelled:
        print("medfusion: cancelled; nothing was written", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("medfusion: interrupted; nothing half-written was left", file=sys.stderr)
        return EXIT_CANCELLED
    except MedFusionError as err:
        if args.debug:
            raise
        print(f"medfusion: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as err:  # a bug: one line unless --debug
        if args.debug:
            raise
        print(f"medfusion: internal error: {type(err).__name__}: {err} (rerun with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
