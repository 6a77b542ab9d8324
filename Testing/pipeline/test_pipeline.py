"""The register-normalise-fuse pipeline on SimpleITK images, normalisation rules and colour fusion."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MedFusionLib.core.colour import apply_colour_map, recolour
from MedFusionLib.core.errors import InputError, MedFusionError, OperationCancelled
from MedFusionLib.core.normalization import guess_modality, intensity_range, normalize
from MedFusionLib.pipeline import fuse_images
from MedFusionLib.samples.phantom import make_phantom_pair


@pytest.fixture(scope="module")
def pair():
    return make_phantom_pair()


def test_normalisation_rules(pair):
    assert guess_modality(pair.ct) == "ct" and guess_modality(pair.mr) == "mr"
    assert intensity_range(pair.ct)[:2] == (-500.0, 1100.0)
    values, rule = normalize(pair.mr, "mr")
    assert 0.0 <= values.min() and values.max() == 1.0 and rule.startswith("mr: percentiles")
    assert (values == 1.0).mean() < 0.01  # only the top 0.5 % of the head saturates
    eight_bit = sitk.GetImageFromArray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    np.testing.assert_allclose(normalize(eight_bit)[0].ravel(), np.arange(256) / 255.0, atol=1e-7)
    with pytest.raises(MedFusionError, match="unknown modality"):
        intensity_range(pair.ct, "xray")


def test_header_only_alignment_puts_output_on_reference_grid(pair):
    before_ct, before_mr = sitk.GetArrayFromImage(pair.ct).copy(), sitk.GetArrayFromImage(pair.mr).copy()
    origin = pair.mr.GetOrigin()
    result = fuse_images([pair.ct, pair.mr], method="max", registration="none")
    assert result.fused.GetSize() == pair.ct.GetSize()
    assert result.fused.GetOrigin() == pair.ct.GetOrigin() and result.fused.GetSpacing() == pair.ct.GetSpacing()
    assert result.registrations == [None]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(pair.ct), before_ct)  # inputs untouched
    np.testing.assert_array_equal(sitk.GetArrayFromImage(pair.mr), before_mr)
    assert pair.mr.GetOrigin() == origin
    assert 0 <= result.fused_array.min() and result.fused_array.max() <= 255


def test_axis_and_mode_options(pair):
    slice_k = fuse_images([pair.ct, pair.mr], method="laplacian", mode="slice", axis=2).fused_array
    slice_i = fuse_images([pair.ct, pair.mr], method="laplacian", mode="slice", axis=0).fused_array
    volume = fuse_images([pair.ct, pair.mr], method="laplacian", mode="volume").fused_array
    assert slice_k.shape == slice_i.shape == volume.shape
    assert not np.allclose(slice_k, slice_i) and not np.allclose(slice_k, volume)
    with pytest.raises(MedFusionError, match="axis"):
        fuse_images([pair.ct, pair.mr], axis=3)


def test_bad_combinations(pair):
    with pytest.raises(InputError, match="at least two"):
        fuse_images([pair.ct])
    with pytest.raises(InputError, match="mix 2-D and 3-D"):
        fuse_images([pair.ct, pair.ct[:, :, 3]])
    with pytest.raises(MedFusionError, match="unknown registration"):
        fuse_images([pair.ct, pair.mr], registration="elastic")
    with pytest.raises(InputError, match="input 2: all voxels have the same value"):
        fuse_images([pair.ct, sitk.Image(pair.mr.GetSize(), sitk.sitkFloat32)])
    with pytest.raises(MedFusionError, match="unknown colour"):
        fuse_images([pair.ct, pair.mr], colour="purple")


def test_cancel_and_progress(pair):
    fractions = []
    fuse_images([pair.ct, pair.mr], method="mean", progress=lambda f, m: fractions.append(f))
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    with pytest.raises(OperationCancelled):
        fuse_images([pair.ct, pair.mr], method="mean", cancel=lambda: True)


def test_three_inputs(pair):
    third = sitk.Cast(sitk.SmoothingRecursiveGaussian(pair.mr, 4.0), sitk.sitkFloat32)
    result = fuse_images([pair.ct, pair.mr, third], method="max")
    assert len(result.sources) == 3 and result.fused.GetSize() == pair.ct.GetSize()


# ------------------------------------------------------------------------------------------------- colour
def test_recolour_keeps_hue_and_grey():
    rgb = np.array([[[220, 40, 10], [90, 90, 90], [0, 0, 0]]], dtype=np.float64)
    own_luma = rgb @ [0.299, 0.587, 0.114]
    np.testing.assert_allclose(recolour(own_luma, rgb), rgb, atol=1)  # luma of itself: unchanged
    grey = recolour(np.array([[200.0, 200.0, 200.0]]), np.full((1, 3, 3), 77.0))
    assert (grey == 200).all()  # no chroma: pure grey anatomy


def test_colour_map_end_points():
    np.testing.assert_allclose(apply_colour_map(np.array([0.0, 1.0]), "hot"), [[0, 0, 0], [255, 255, 255]])
    with pytest.raises(MedFusionError, match="unknown colour map"):
        apply_colour_map(np.zeros(3), "nope")


def test_colour_output_for_rgb_slices_and_scalar_volumes(pair):
    y, x = np.mgrid[-1:1:64j, -1:1:64j]
    mr = sitk.GetImageFromArray(np.where(x**2 + y**2 < 0.8, 120 + 50 * np.sin(8 * x), 0).astype(np.uint8))
    blob = np.exp(-(x**2 + y**2) / 0.1)
    pet = sitk.GetImageFromArray(np.stack([250 * blob, 60 * blob, 20 * blob], -1).astype(np.uint8), isVector=True)
    result = fuse_images([mr, pet], method="max", colour="auto")
    rgb = sitk.GetArrayFromImage(result.colour_fused)
    assert rgb.shape == (64, 64, 3)
    centre, rim = rgb[32, 32].astype(int), rgb[5, 32].astype(int)
    assert centre[0] > centre[2] + 100  # red uptake over the anatomy
    assert abs(rim[0] - rim[2]) <= 2  # grey where there is no uptake
    volume = fuse_images([pair.ct, pair.mr], method="max", colour="hot", functional=1).colour_fused
    assert volume.GetNumberOfComponentsPerPixel() == 3 and volume.GetSize() == pair.ct.GetSize()


def test_overlay_style_grey_anatomy_thresholded_colour_black_background():
    """PET over MR as clinicians read it: grey below the threshold, colour above it, black stays black."""
    z, y, x = np.mgrid[-1:1:8j, -1:1:48j, -1:1:48j]
    head = x**2 + y**2 < 0.7
    mr = sitk.GetImageFromArray(np.where(head, 300 + 200 * np.sin(6 * x), 0).astype(np.float32))
    uptake = np.exp(-((x - 0.3) ** 2 + y**2) / 0.05)
    pet = sitk.GetImageFromArray((np.where(head, 0.2, 0.0) + uptake * head).astype(np.float32))
    for image in (mr, pet):
        image.SetSpacing((2.0, 2.0, 4.0))
    overlay = fuse_images([mr, pet], method="mean", colour="auto")  # overlay is the default style
    rgb = sitk.GetArrayFromImage(overlay.colour_fused).astype(int)
    grey = overlay.fused_array
    hot, tissue, air = (4, 24, 31), (4, 24, 10), (4, 2, 2)
    assert rgb[hot][0] > rgb[hot][2] + 60  # coloured uptake
    assert abs(rgb[tissue][0] - rgb[tissue][2]) <= 1 and abs(rgb[tissue][0] - grey[tissue]) <= 1  # plain grey
    assert (rgb[air] == 0).all()  # black background
    assert overlay.kinds == ["mr", "pet"]  # the colour input was detected, not assumed
    assert overlay.normalisation[1].startswith("pet: percentiles")  # and the rule is named for it
    ycbcr = fuse_images([mr, pet], method="mean", colour="auto", colour_style="ycbcr")
    assert not np.array_equal(sitk.GetArrayFromImage(ycbcr.colour_fused), sitk.GetArrayFromImage(overlay.colour_fused))
    with pytest.raises(MedFusionError, match="unknown colour style"):
        fuse_images([mr, pet], method="mean", colour="auto", colour_style="pastel")


def test_metrics_protocol_has_one_axis_key_in_the_axis_option_convention(pair):
    result = fuse_images([pair.ct, pair.mr], method="mean", axis=1)
    protocol = result.metrics(include_3d=False)["protocol"]
    assert protocol["axis"] == 1 and "image_axis" not in protocol and "--axis" in protocol["axis_note"]


def test_nan_inputs_are_background_in_the_library_too(pair, caplog):
    mr = sitk.GetArrayFromImage(pair.mr).astype(np.float32)
    mr[:, :5] = np.nan
    image = sitk.GetImageFromArray(mr)
    image.CopyInformation(pair.mr)
    with caplog.at_level("WARNING", logger="MedFusionLib"):
        result = fuse_images([pair.ct, image], method="mean")
    assert np.isfinite(result.fused_array).all()
    assert any("NaN voxel(s)" in r.getMessage() and r.getMessage().startswith("input 2:") for r in caplog.records)
