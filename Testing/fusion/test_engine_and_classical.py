"""The method registry, the slice/volume engine and the classical methods."""

from __future__ import annotations

import numpy as np
import pytest

from MedFusionLib.core.errors import MedFusionError, OperationCancelled
from MedFusionLib.fusion import describe_methods, fuse_arrays, get_method, registry
from MedFusionLib.fusion.registry import FAMILIES, FusionMethod

CLASSICAL = ["mean", "max", "laplacian", "guided-filter"]


def _pair(shape=(12, 40, 36), seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    head = (z**2 + y**2 + x**2) < 0.7
    a = np.where(head, 0.3 + 0.4 * rng.random(shape), 0.0).astype(np.float32)
    b = np.where(head & (x > 0), 0.9, 0.0).astype(np.float32)
    return a, b


def test_registry_lists_valid_methods_with_one_default():
    methods = describe_methods()
    assert [m["name"] for m in methods if m["default"]] == [get_method(None).name]
    for m in methods:
        assert m["family"] in FAMILIES
        assert set(m["modes"]) <= {"slice", "volume"} and m["modes"]
        assert m["inputs"] == 2 or m["inputs"] == "n"
    assert {m["name"] for m in methods} >= set(CLASSICAL)


def test_unknown_method_and_mode_are_clear_errors():
    a, b = _pair()
    with pytest.raises(MedFusionError, match="unknown fusion method 'nope'"):
        fuse_arrays([a, b], "nope")
    with pytest.raises(MedFusionError, match="same shape|share one shape"):
        fuse_arrays([a, b[:-1]], "mean")
    with pytest.raises(MedFusionError, match="slice axis"):
        fuse_arrays([a, b], "mean", "slice", axis=5)


@pytest.mark.parametrize("name", CLASSICAL)
@pytest.mark.parametrize("mode", ["slice", "volume"])
def test_identical_inputs_are_reproduced(name, mode):
    a, _ = _pair()
    fused = fuse_arrays([a, a], name, mode)
    np.testing.assert_allclose(fused, a, atol=2e-3)


@pytest.mark.parametrize("name", CLASSICAL)
@pytest.mark.parametrize("mode", ["slice", "volume"])
def test_output_shape_range_and_determinism(name, mode):
    a, b = _pair()
    first = fuse_arrays([a, b], name, mode, axis=1)
    again = fuse_arrays([a.copy(), b.copy()], name, mode, axis=1)
    assert first.shape == a.shape and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0
    np.testing.assert_array_equal(first, again)


def test_mean_and_max_values():
    a, b = _pair()
    np.testing.assert_allclose(fuse_arrays([a, b], "mean"), (a + b) / 2, atol=1e-6)
    np.testing.assert_array_equal(fuse_arrays([a, b], "max"), np.maximum(a, b))
    c = np.full_like(a, 0.5)
    np.testing.assert_array_equal(fuse_arrays([a, b, c], "max", "volume"), np.maximum(np.maximum(a, b), c))


def test_structures_of_both_inputs_survive_in_multiscale_methods():
    a, b = _pair((3, 128, 128))  # structures large against the filters, as in real 256 x 256 slices
    bright_b = b > 0.5
    x = np.linspace(-1, 1, a.shape[2])[None, None, :]
    for name in ("laplacian", "guided-filter"):
        fused = fuse_arrays([a, b], name)
        assert fused[bright_b].mean() > 0.75  # b's bright region kept
        left = (a > 0) & (x < -0.3)  # a's side, away from the border with b
        assert np.corrcoef(fused[left], a[left])[0, 1] > 0.8  # a's texture kept where b is dark


def test_inputs_are_not_modified():
    a, b = _pair()
    a0, b0 = a.copy(), b.copy()
    for name in CLASSICAL:
        fuse_arrays([a, b], name, "volume")
        fuse_arrays([a, b], name, "slice", axis=2)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


@pytest.fixture
def recording_method(monkeypatch):
    """A temporary registered method that records the batches it is given."""
    calls = []

    def fuse_slices(stack):
        calls.append(stack.shape)
        return stack.max(axis=0)

    method = FusionMethod("test-recorder", "classical", "records calls", fuse_slices=fuse_slices, inputs="n")
    monkeypatch.setitem(registry._REGISTRY, method.name, method)
    return calls


def test_slice_mode_skips_empty_slices_batches_and_follows_axis(recording_method):
    a = np.zeros((10, 20, 30), np.float32)
    b = np.zeros_like(a)
    a[2:5, 5:15, 10:20] = 0.8
    fused = fuse_arrays([a, b], "test-recorder", "slice", axis=0, batch_size=2)
    np.testing.assert_array_equal(fused, a)
    assert sum(shape[1] for shape in recording_method) == 3  # only the 3 slices with foreground
    assert all(shape[1] <= 2 for shape in recording_method)
    recording_method.clear()
    fuse_arrays([a, b], "test-recorder", "slice", axis=2)
    assert sum(shape[1] for shape in recording_method) == 10  # foreground columns along x
    assert recording_method[0][2:] == (3 + 2 * 3, 10 + 2 * 8) or recording_method[0][2:][0] <= 10


def test_progress_and_cancel(recording_method):
    a, b = _pair()
    seen = []
    fuse_arrays([a, b], "test-recorder", "slice", progress=lambda f, m: seen.append(f), batch_size=1)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(OperationCancelled):
        fuse_arrays([a, b], "test-recorder", "slice", cancel=lambda: True)


def test_wrong_input_count_is_refused(monkeypatch):
    method = FusionMethod("test-two", "classical", "two inputs only", fuse_slices=lambda s: s[0], inputs=2)
    monkeypatch.setitem(registry._REGISTRY, method.name, method)
    a, b = _pair()
    with pytest.raises(MedFusionError, match="takes 2 inputs, got 3"):
        fuse_arrays([a, b, a], "test-two")
    with pytest.raises(MedFusionError, match="supports modes"):
        fuse_arrays([a, b], "test-two", "volume")


def test_two_d_arrays():
    a, b = _pair()
    fused = fuse_arrays([a[5], b[5]], "laplacian")
    assert fused.shape == a[5].shape


def test_listing_methods_does_not_import_torch():
    """Slicer obtains torch on first use (PyTorch extension): the registry must load without it."""
    import subprocess
    import sys

    code = (
        "import sys, MedFusionLib.fusion as f; f.available_methods(); f.get_method(None); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
