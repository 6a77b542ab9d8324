"""Preview PNGs: columns labelled by plane, PET/SPECT sources shown in colour."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from PIL import Image

from MedFusionLib.core.options import FusionOptions
from MedFusionLib.pipeline.files import fuse_files


def test_case_preview_labels_columns_and_colours_the_pet_source(tmp_path):
    z, y, x = np.mgrid[-1:1:16j, -1:1:40j, -1:1:40j]
    head = x**2 + y**2 + z**2 < 0.8
    mr = np.where(head, 400 + 150 * np.sign(np.sin(9 * x)), 0).astype(np.float32)
    pet = np.where(head, 1.0, 0.0).astype(np.float32)
    for name, array in (("mr.nii.gz", mr), ("pet.nii.gz", pet)):
        image = sitk.GetImageFromArray(array)
        image.SetMetaData("descrip", "FDG PET" if name.startswith("pet") else "T1 MR")
        sitk.WriteImage(image, str(tmp_path / name))
    preview = tmp_path / "p.png"
    fuse_files(
        [str(tmp_path / "mr.nii.gz"), str(tmp_path / "pet.nii.gz")],
        str(tmp_path / "f.nii.gz"),
        FusionOptions(method="mean"),
        preview_path=str(preview),
    )
    canvas = np.asarray(Image.open(preview).convert("RGB")).astype(int)
    title = canvas[:14]
    assert title.max() > 100  # the plane titles are drawn in the band above the first row
    rows = canvas.shape[0]
    pet_band = canvas[rows // 3 + 20 : 2 * rows // 3 - 10]
    chroma = np.abs(pet_band[..., 0] - pet_band[..., 2])
    mr_band = canvas[30 : rows // 3 - 10]
    assert chroma.max() > 100  # the PET row is in colour
    assert np.abs(mr_band[..., 0] - mr_band[..., 2])[:, :100].max() < 5  # the MR row is grey
