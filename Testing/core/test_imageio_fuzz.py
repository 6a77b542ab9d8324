"""Seeded fuzzing of the readers: random shapes, pixel types, values and headers, written in every format and
then damaged (truncated or with flipped bytes). Every file must load or fail with one InputError line: no
other exception, no hang, nothing printed by the native libraries."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from MedFusionLib.core import imageio as io
from MedFusionLib.core.errors import MedFusionError

FORMATS = (".nii", ".nii.gz", ".nrrd", ".mha", ".png", ".tif")
DTYPES = (np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64)
SPECIAL = (0.0, -1.0, 1e30, -1e30, float("nan"), float("inf"), 255.0, -1024.0)
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def images(draw) -> tuple[np.ndarray, dict, str, tuple]:
    ext = draw(st.sampled_from(FORMATS))
    ndim = 2 if ext in (".png", ".tif") else draw(st.sampled_from((2, 3)))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    dtype = np.uint8 if ext == ".png" else draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    array = np.random.default_rng(seed).normal(0, draw(st.sampled_from((1.0, 100.0, 1e6))), shape)
    for _ in range(draw(st.integers(0, 3))):
        index = tuple(draw(st.integers(0, n - 1)) for n in shape)
        array[index] = draw(st.sampled_from(SPECIAL))
    if draw(st.booleans()):
        array[...] = draw(st.sampled_from(SPECIAL))  # constant, all-NaN, all-Inf
    with np.errstate(invalid="ignore", over="ignore"):
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            array = np.clip(np.nan_to_num(array), info.min, info.max)
        array = array.astype(dtype)
    header = {
        "spacing": tuple(draw(st.one_of(st.floats(0.1, 10.0), FLOATS)) for _ in range(ndim)),
        "origin": tuple(draw(st.one_of(st.floats(-500.0, 500.0), FLOATS)) for _ in range(ndim)),
        "flip": draw(st.booleans()),
    }
    damage = draw(st.one_of(st.none(), st.tuples(st.sampled_from(("truncate", "flip")), st.floats(0.0, 1.0))))
    return array, header, ext, damage


_MET_TYPES = {
    "uint8": "MET_UCHAR",
    "int16": "MET_SHORT",
    "uint16": "MET_USHORT",
    "int32": "MET_INT",
    "float32": "MET_FLOAT",
    "float64": "MET_DOUBLE",
}


def _write_raw_metaimage(array: np.ndarray, header: dict, path: Path) -> None:
    """A MetaImage written by hand, for headers SimpleITK's writer refuses (NaN, Inf or zero spacing...)."""
    size = " ".join(str(n) for n in array.shape[::-1])
    text = (
        f"ObjectType = Image\nNDims = {array.ndim}\nDimSize = {size}\n"
        f"ElementSpacing = {' '.join(repr(float(v)) for v in header['spacing'])}\n"
        f"Offset = {' '.join(repr(float(v)) for v in header['origin'])}\n"
        f"ElementType = {_MET_TYPES[array.dtype.name]}\nElementByteOrderMSB = False\nElementDataFile = LOCAL\n"
    )
    path.write_bytes(text.encode() + np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())


def _write(array: np.ndarray, header: dict, path: Path) -> bool:
    """Write with SimpleITK, or by hand as MetaImage when SimpleITK refuses the header (False: the case was
    written as ``path.with_suffix('.mha')``)."""
    image = sitk.GetImageFromArray(array)
    try:
        with io.native_stderr():  # ITK prints about singular matrices while setting such headers
            image.SetSpacing(header["spacing"])
            image.SetOrigin(header["origin"])
            if header["flip"]:
                direction = np.eye(array.ndim)
                direction[0, 0] = -1
                image.SetDirection(direction.ravel().tolist())
            sitk.WriteImage(image, str(path))
    except RuntimeError:
        return False
    return True


def _damage(path: Path, damage) -> None:
    if damage is None or not path.exists():
        return
    data = bytearray(path.read_bytes())
    kind, where = damage
    cut = int(where * len(data))
    if kind == "truncate":
        del data[cut:]
    elif data:
        data[min(cut, len(data) - 1)] ^= 0xFF
    path.write_bytes(bytes(data))


@settings(
    max_examples=900,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(case=images())
def test_readers_load_or_fail_with_one_line(case, capfd):
    array, header, ext, damage = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{ext}"
        if not _write(array, header, path):
            path = Path(folder) / "fuzz_raw.mha"
            _write_raw_metaimage(array, header, path)
            ext = ".mha (hand-written header)"
        _damage(path, damage)
        try:
            image = io.load_for_fusion(path)
        except MedFusionError as err:
            event(f"{ext}: refused")
            assert "\n" not in str(err) and str(err)
        else:
            event(f"{ext}: loaded")
            values = sitk.GetArrayViewFromImage(image)
            assert np.isfinite(values).all()
            assert image.GetNumberOfComponentsPerPixel() == 1
    out, err = capfd.readouterr()
    assert err == "" and out == "", err[-500:]
