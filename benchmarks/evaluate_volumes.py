"""Fusion quality on real volumes, compared with pixel-wise max **paired over (pair, mode) rows**.

Usage (from the repository root)::

    # choosing anything (recipes, the default): the select pairs only
    python benchmarks/evaluate_volumes.py --data ../shared/data --split select [--methods max,fusion-unet]
    # the report, once, after the choice: the report pairs
    python benchmarks/evaluate_volumes.py --data ../shared/data --split report --out out/volumes

Protocol (docs/deep-fusion.md, section "Real volumes"):

* the pairs and their split are ``MedFusionLib.training.data.VOLUME_SELECT`` / ``VOLUME_REPORT``, fixed by
  subject before any result was looked at: select = the six SPM template pairs (MR T1/T2/PD with PET and SPECT;
  fusion-unet trains on their slices), report = SIRF MR T1+T2 and mu-map+PET, the clinical STS_002 CT+PET,
  CT+MR and MR+PET, and the porcine CT+MR (registered here, rigid, by ``MedFusionLib.registration``);
* each input on 0..1 by the project's normalisation (``core/normalization.py``: CT window, else percentiles;
  the second input resampled onto the first's grid), both cropped to their joint foreground (+ 4 voxels);
* every method fused in slice mode (axial) and in volume mode, rounded to 8 bits; per case and mode: the 8
  published columns (EN SD SF MI SCD VIF QABF SSIM, ``MedFusionLib.metrics``) averaged over up to
  ``--slices`` evenly spaced axial slices with foreground, and the **saturation share** (foreground voxels at
  >= 250 of 255; foreground: the brighter source above 5 %) over the whole volume; for information (no bar), the
  **darker-than-both share** (foreground voxels at least 0.1 below every source, ``data.darker_than_sources_share``);
* paired against max over the (pair, mode) rows with the 2-D protocol's rule (``evaluate_quality.paired_verdict``:
  win = mean difference >= 1 % of max's mean and a 95 % t-interval above 0; ties are not wins);
* the issue's bars per method: saturation never above max's or either source's + 3 points in any row; QABF and
  VIF no more than 10 % below max; wins on >= 3 of 8 columns;
* a montage per case (three orthogonal planes; rows: the sources, max, then ``--montage-methods``), under ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.evaluate_quality import COLUMNS, paired_verdict, save_results, score_counts  # noqa: E402
from MedFusionLib.fusion import available_methods, default_method_name, fuse_arrays  # noqa: E402
from MedFusionLib.metrics import compute_metrics  # noqa: E402
from MedFusionLib.training import data as D  # noqa: E402

MODES = ("slice", "volume")
SATURATION_SLACK = 0.03  # the bar: at most 3 points above max and above either source
LOSS_BOUND = 0.10  # QABF and VIF at most 10 % below max
MIN_WINS = 3
CROP_MARGIN = 4


def crop_to_foreground(volume: np.ndarray, margin: int = CROP_MARGIN) -> np.ndarray:
    """(n, D, H, W) cropped to the bounding box of the joint foreground (brighter source > 5 %) plus ``margin``."""
    mask = volume.max(axis=0) > D.FOREGROUND
    if not mask.any():
        return volume
    box = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(0, hit[0] - margin), min(mask.shape[axis], hit[-1] + margin + 1)))
    return volume[(slice(None), *box)]


def registered_transform(data_dir: Path, pair: D.VolumePair, cache: Path | None):
    """Rigid transform (first -> second) of a pair whose headers do not align it, cached as a .tfm file."""
    import SimpleITK as sitk

    from MedFusionLib.registration.core import register

    path = cache / f"{pair.case}-{pair.first}-{pair.second}.tfm" if cache else None
    if path is not None and path.exists():
        return sitk.ReadTransform(str(path))
    root = D.volumes_root(data_dir) / pair.case
    fixed, moving = (sitk.ReadImage(str(root / f"{n}.nii.gz")) for n in (pair.first, pair.second))
    result = register(fixed, moving, "rigid")
    print(f"# {pair.name}: {result.summary()}", flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteTransform(result.transform, str(path))
    return result.transform


def load_case(data_dir: Path, pair: D.VolumePair, cache: Path | None) -> np.ndarray:
    """The pair on 0..1, on the first volume's grid, cropped to the joint foreground: float32 (2, D, H, W)."""
    transform = registered_transform(data_dir, pair, cache) if pair.register else None
    return crop_to_foreground(D.load_volume_pair(data_dir, pair, transform))


def metric_slices(volume: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` evenly spaced axial indices whose slice holds at least 10 % foreground."""
    share = (volume.max(axis=0) > D.FOREGROUND).mean(axis=(1, 2))
    usable = np.flatnonzero(share >= D.SLICE_FOREGROUND)
    if len(usable) > count:
        usable = usable[np.linspace(0, len(usable) - 1, count).astype(int)]
    return usable


def score_volume(sources8: np.ndarray, fused8: np.ndarray, indices: np.ndarray) -> dict[str, float]:
    """The 8 columns averaged over the axial slices ``indices``, and the saturation and darker-than-both-sources
    shares of the whole volume."""
    rows = [compute_metrics(list(sources8[:, k]), fused8[k], keys=list(COLUMNS)) for k in indices]
    out = {c: float(np.mean([r[c] for r in rows])) for c in COLUMNS}
    fused, sources = fused8 / 255.0, sources8 / 255.0
    out["SAT"] = D.saturation_share(fused, sources)
    out["DARK"] = D.darker_than_sources_share(fused, sources)
    return out


def to_8bit(array: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(array * 255.0 + 0.5), 0, 255)


def evaluate_case(volume: np.ndarray, modalities, methods, slices: int) -> tuple[dict, dict]:
    """Every method in both modes on one case: ``({mode: {method: scores}}, {mode: {method: fused 8-bit}})``."""
    sources8 = to_8bit(volume).astype(np.float64)
    indices = metric_slices(volume, slices)
    scores: dict = {}
    fused_all: dict = {}
    for mode in MODES:
        for name in methods:
            t0 = time.perf_counter()
            fused8 = to_8bit(fuse_arrays(list(volume), name, mode=mode, axis=0, modalities=modalities))
            row = score_volume(sources8, fused8, indices)
            row["seconds"] = time.perf_counter() - t0
            print(f"#   {mode} {name}: {row['seconds']:.1f} s, saturation {100 * row['SAT']:.1f} %", flush=True)
            scores.setdefault(mode, {})[name] = row
            fused_all.setdefault(mode, {})[name] = fused8.astype(np.uint8)
    return scores, fused_all


def source_saturation(volume: np.ndarray) -> list[float]:
    return [D.saturation_share(to_8bit(v) / 255.0, volume) for v in volume]


def bars(rows: list[dict], name: str) -> dict:
    """The issue's bars for ``name`` over the (pair, mode) rows: saturation, QABF/VIF bound, paired wins."""
    verdicts = {c: paired_verdict([r[name][c] for r in rows], [r["max"][c] for r in rows]) for c in COLUMNS}
    worst_saturation = max(r[name]["SAT"] - max([r["max"]["SAT"], *r["sources_SAT"]]) for r in rows)
    worst_dark = max(r[name]["DARK"] for r in rows)  # information, no bar
    wins, ties, losses = score_counts(verdicts)
    return {
        "verdicts": verdicts,
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "worst_saturation_excess": worst_saturation,
        "saturation_ok": worst_saturation <= SATURATION_SLACK,
        "worst_darker_than_sources": worst_dark,
        "qabf_vif_ok": all(verdicts[c]["relative"] >= -LOSS_BOUND for c in ("QABF", "VIF")),
        "wins_ok": wins >= MIN_WINS,
    }


def evaluate(data_dir: Path, methods, split: str, slices: int, out_dir: Path | None, montage_methods=()) -> dict:
    """Fuse and score every pair of ``split``; the rows, and each method's verdicts and bars against max."""
    methods = ["max"] + [m for m in methods if m != "max"]
    rows: list[dict] = []
    root = D.volumes_root(data_dir)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for pair in D.VOLUME_SPLITS[split]:
        if not all((root / pair.case / f"{n}.nii.gz").exists() for n in (pair.first, pair.second)):
            print(f"# {pair.name}: missing, skipped", flush=True)
            continue
        volume = load_case(data_dir, pair, out_dir / "transforms" if out_dir else None)
        scores, fused = evaluate_case(volume, (pair.first_modality, pair.second_modality), methods, slices)
        sources_sat = source_saturation(volume)
        for mode in MODES:
            rows.append({"pair": pair.name, "mode": mode, "shape": list(volume.shape[1:]), **scores[mode]})
            rows[-1]["sources_SAT"] = sources_sat
        if out_dir is not None:
            shown = ["max"] + [m for m in montage_methods if m in methods and m != "max"]
            write_montage(out_dir / f"montage-{pair.case}-{pair.first}-{pair.second}.png", volume, fused, shown, pair)
        print(f"# {pair.name} {tuple(volume.shape[1:])}: done", flush=True)
    summary = {name: bars(rows, name) for name in methods if name != "max"} if len(rows) >= 2 else {}
    return {"split": split, "rows": rows, "summary": summary}


def write_montage(path: Path, volume: np.ndarray, fused: dict, shown, pair: D.VolumePair) -> None:
    """Three orthogonal planes per row: the two sources, then max and each shown method in both modes."""
    from MedFusionLib.render.preview import write_preview

    images = [to_8bit(v) for v in volume] + [fused[mode][m] for m in shown for mode in MODES]
    labels = [f"{pair.first} ({pair.first_modality})", f"{pair.second} ({pair.second_modality})"]
    labels += [f"{m} ({mode})" for m in shown for mode in MODES]
    write_preview([np.asarray(im, np.float32) for im in images], labels, path)


def format_report(result: dict, default: str) -> str:
    """Per row: the 8 columns and the saturation share; then per method the paired verdicts and the bars."""
    lines = [
        f"{'pair':<28}{'mode':<7}{'method':<24}" + "".join(f"{c:>7}" for c in COLUMNS) + "    SAT%  DARK%  src SAT%"
    ]
    for row in result["rows"]:
        for name in [k for k in row if isinstance(row[k], dict)]:
            r = row[name]
            mark = " *" if name == default else ""
            lines.append(
                f"{row['pair']:<28}{row['mode']:<7}{name + mark:<24}"
                + "".join(f"{r[c]:>7.3f}" for c in COLUMNS)
                + f"{100 * r['SAT']:>8.1f}{100 * r['DARK']:>7.2f}  "
                + "/".join(f"{100 * s:.1f}" for s in row["sources_SAT"])
            )
    n = len(result["rows"])
    lines.append(f"\npaired against max over {n} (pair, mode) rows (W/T/L; relative difference of the mean):")
    lines.append(
        f"{'method':<24}" + "".join(f"{c:>9}" for c in COLUMNS) + "  W/T/L  SAT+max  DARK%  bars(sat,qabf/vif,>=3 wins)"
    )
    for name, s in result["summary"].items():
        cells = "".join(
            f"{s['verdicts'][c]['verdict'][0].upper()}{s['verdicts'][c]['relative']:+7.1%}".rjust(9) for c in COLUMNS
        )
        ok = ",".join("yes" if s[k] else "no" for k in ("saturation_ok", "qabf_vif_ok", "wins_ok"))
        mark = " *" if name == default else ""
        lines.append(
            f"{name + mark:<24}{cells}  {s['wins']}/{s['ties']}/{s['losses']}"
            f"  {100 * s['worst_saturation_excess']:+6.1f}  {100 * s['worst_darker_than_sources']:5.2f}  {ok}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", default=str(ROOT / "out" / "volumes"), help="montages, transforms, JSON (not committed)")
    p.add_argument("--split", choices=tuple(D.VOLUME_SPLITS), default="select")
    p.add_argument("--methods", default=None, help="comma-separated (default: every registered method); max always")
    p.add_argument("--montage-methods", default=None, help="rows of the montage after max (default: the default)")
    p.add_argument("--slices", type=int, default=12, help="axial slices scored per case (evenly spaced)")
    args = p.parse_args(argv)
    methods = args.methods.split(",") if args.methods else [m.name for m in available_methods()]
    montage = args.montage_methods.split(",") if args.montage_methods else [default_method_name()]
    out = Path(args.out)
    t0 = time.perf_counter()
    result = evaluate(Path(args.data), methods, args.split, args.slices, out, montage)
    print(f"# Real volumes, {args.split} pairs; slice (axial) and volume mode; 8-bit fused; default marked *")
    print(format_report(result, default_method_name()))
    save_results(result, out / f"volumes-{args.split}.json", t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
