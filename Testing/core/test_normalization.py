"""Modality auto-detection: header words, CT values, saturated 8-bit bone, and functional smoothness."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from MedFusionLib.core.imageio import read_image
from MedFusionLib.core.normalization import detect_modalities
from MedFusionLib.pipeline.prepare import registration_preset
from MedFusionLib.samples.phantom import make_phantom_pair


def _mr_and_pet() -> tuple[sitk.Image, sitk.Image]:
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[-1:1:20j, -1:1:40j, -1:1:40j]
    head = x**2 + y**2 + z**2 < 0.8
    mr = np.where(head, 400 + 150 * np.sign(np.sin(9 * x) * np.cos(7 * y)) + rng.normal(0, 20, head.shape), 0)
    pet = ndimage.gaussian_filter(np.where(head, 1.0 + 0.5 * (x > 0.2), 0.0), 2.5)
    return sitk.GetImageFromArray(mr.astype(np.float32)), sitk.GetImageFromArray(pet.astype(np.float32))


def test_pet_beside_mr_is_detected_by_smoothness_in_either_order():
    mr, pet = _mr_and_pet()
    assert [k for k, _ in detect_modalities([mr, pet])] == ["mr", "pet"]
    assert [k for k, _ in detect_modalities([pet, mr])] == ["pet", "mr"]
    assert "smooth" in detect_modalities([mr, pet])[1][1]


def test_ct_values_header_words_and_given_modalities():
    pair = make_phantom_pair()
    assert [k for k, _ in detect_modalities([pair.ct, pair.mr])] == ["ct", "mr"]
    mr, pet = _mr_and_pet()
    pet.SetMetaData("descrip", "Tc-99m HMPAO SPECT template")
    mr.SetMetaData("0008|0060", "MR")
    assert detect_modalities([mr, pet]) == [("mr", "header"), ("spect", "header")]
    assert detect_modalities([mr, pet], ["auto", "pet"])[1] == ("pet", "given")


def test_eight_bit_ct_slice_with_saturated_bone():
    y, x = np.mgrid[-1:1:64j, -1:1:64j]
    r = np.sqrt(x**2 + y**2)
    ct = np.where(r < 0.8, 90, 0) + np.where((r > 0.7) & (r < 0.8), 165, 0)  # skull ring at 255
    mr = np.where(r < 0.8, 80 + 60 * np.sin(12 * x) ** 2, 0)
    images = [sitk.GetImageFromArray(a.astype(np.uint8)) for a in (ct, mr)]
    kinds = [k for k, _ in detect_modalities(images)]
    assert kinds == ["ct", "mr"] and registration_preset(kinds, 1) == "ct-mr"
    assert registration_preset(["mr", "pet"], 1) == "pet-mr" and registration_preset(["mr", "mr"], 1) == "mr-mr"


@pytest.mark.parametrize(("name", "kind"), [("PET", "pet"), ("SPECT", "spect"), ("T2", "mr")])
def test_spm_templates_beside_t1(shared_data, name, kind):
    folder = shared_data / "volumes" / "spm"
    t1, other = read_image(folder / "T1.nii.gz"), read_image(folder / f"{name}.nii.gz")
    assert [k for k, _ in detect_modalities([t1, other])] == ["mr", kind]


def test_eight_bit_mr_with_saturated_fat_is_not_ct():
    """Bright fat or CSF saturates 15-25 % of some MR slices' foreground, as bone does in CT; the MR's unsaturated
    foreground spreads wide, CT soft tissue does not."""
    y, x = np.mgrid[-1:1:64j, -1:1:64j]
    r = np.sqrt(x**2 + y**2)
    mr = np.where(r < 0.8, 30 + 200 * (0.5 + 0.5 * np.sin(9 * x) * np.cos(7 * y)), 0)
    mr = np.where((r > 0.7) & (r < 0.8), 255, mr)  # a saturated rim of scalp fat
    image = sitk.GetImageFromArray(mr.astype(np.uint8))
    saturated = (mr[mr > 20] >= 250).mean()
    assert 0.15 <= saturated < 0.25
    assert detect_modalities([image])[0][0] == "mr"


FUNCTIONAL = {"pet", "spect"}  # a pseudo-colour slice tells functional from anatomical, not PET from SPECT


@pytest.mark.real_data
def test_detection_on_every_shared_harvard_pair_in_both_orders(shared_data):
    """As stored (CT and MRI grey, PET/SPECT pseudo-colour): right on >= 99 % of the images, counted by subject."""
    from MedFusionLib.training import data as D

    truth = {"CT": {"ct"}, "MRI": {"mr"}, "PET": FUNCTIONAL, "SPECT": FUNCTIONAL}
    right, total, wrong_by_subject = 0, 0, {}
    for pair, file_id, first, second in D.list_pairs(shared_data):
        names = pair.split("-")
        images = [sitk.ReadImage(str(first)), sitk.ReadImage(str(second))]
        for order in ((0, 1), (1, 0)):
            found = detect_modalities([images[i] for i in order])
            for i, (kind, _) in zip(order, found):
                ok = kind in truth[names[i]]
                right, total = right + ok, total + 1
                if not ok:
                    key = (pair, D.case_id(file_id), names[i], kind)
                    wrong_by_subject[key] = wrong_by_subject.get(key, 0) + 1
    assert total == 4 * len(D.list_pairs(shared_data))
    assert right / total >= 0.99, (right / total, wrong_by_subject)


@pytest.mark.parametrize("shape", [(1, 40, 40), (2, 40, 40), (3, 3, 40)])
def test_detection_accepts_volumes_thinner_than_the_blur_needs(shape):
    """ITK's recursive Gaussian needs 4 pixels per axis; a 1-3 slice volume (a thin DICOM series) is still detected."""
    rng = np.random.default_rng(0)
    ct = sitk.GetImageFromArray((rng.random(shape) * 2000 - 1000).astype(np.float32))  # HU: values below -500
    other = sitk.GetImageFromArray((rng.random(shape) * 300).astype(np.float32))
    kinds = [kind for kind, _ in detect_modalities([ct, other])]
    assert len(kinds) == 2 and kinds[0] == "ct"


def test_negative_mr_units_are_not_taken_for_hounsfield_units():
    """An MR in arbitrary units offset below -500 gets the percentile rule; CT (air, soft tissue) the window."""
    from MedFusionLib.core.normalization import guess_modality, holds_hounsfield_units
    from MedFusionLib.samples.phantom import make_phantom_pair

    pair = make_phantom_pair()
    ct = sitk.GetArrayFromImage(pair.ct)
    mr = sitk.GetArrayFromImage(pair.mr)
    negative_mr = (mr / mr.max() * 700 - 800).astype(np.float32)  # background at -800, tissue up to -100
    assert holds_hounsfield_units(ct) and guess_modality(pair.ct) == "ct"
    assert not holds_hounsfield_units(negative_mr)
    image = sitk.GetImageFromArray(negative_mr)
    assert guess_modality(image) == "mr"
    assert [kind for kind, _ in detect_modalities([pair.ct, image])] == ["ct", "mr"]
    # a CT cropped to the body still has the air of the airways and sinuses only if they are in the crop:
    # without air below -850 the window is not assumed (the percentile rule keeps it visible)
    assert not holds_hounsfield_units(np.where(ct < -850, -600, ct))
