"""A job's options are checked before any input (patient data) is written to its folder."""

from __future__ import annotations

import pytest

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.pipeline.job import JOB, write_job
from MedFusionLib.samples.phantom import make_phantom_pair


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"mode": "bogus"}, "unknown mode"),
        ({"axis": 5}, "unknown axis"),
        ({"registration": "elastic"}, "unknown registration"),
        ({"colour": "green"}, "unknown colour"),
        ({"method": "no-such-method"}, "unknown fusion method"),
        ({"modalities": ["ct"]}, "one modality per input"),
        ({"computeMetrics": "yes"}, "true or false"),
        ({"speed": "fast"}, "unknown job options"),
    ],
)
def test_bad_options_write_nothing(tmp_path, options, expected):
    pair = make_phantom_pair()
    folder = tmp_path / "job"
    with pytest.raises(MedFusionError, match=expected):
        write_job(folder, [pair.ct, pair.mr], **options)
    assert not folder.exists() or not any(folder.iterdir())


def test_good_options_write_the_job(tmp_path):
    pair = make_phantom_pair()
    path = write_job(tmp_path, [pair.ct, pair.mr], method="mean", mode="volume", modalities=["ct", "mr"])
    assert path.name == JOB and sorted(p.name for p in tmp_path.iterdir()) == ["input_0.nrrd", "input_1.nrrd", JOB]
