"""Manifest rows as cases: absolute input paths, refused unsafe names, and duplicate names made unique."""

from __future__ import annotations

from pathlib import Path

import pytest

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.study.manifest import case_output, read_manifest


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.csv"
    path.write_text(text)
    return path


def test_relative_paths_become_absolute(tmp_path):
    cases = read_manifest(write(tmp_path, "a,b,name\nsub/ct.png,mr.png,one\n"))
    assert cases[0].inputs == (str(tmp_path / "sub/ct.png"), str(tmp_path / "mr.png"))
    assert all(Path(p).is_absolute() for p in cases[0].inputs)


def test_utf8_names_and_a_spreadsheet_bom_whatever_the_locale(tmp_path):
    """Manifests are UTF-8 (a BOM from a spreadsheet is dropped), not the locale's encoding (ASCII under LC_ALL=C)."""
    path = tmp_path / "cases.csv"
    path.write_bytes("\ufeffname,a,b\nMüller_ü,ct.png,mr.png\n".encode("utf-8"))
    cases = read_manifest(path)
    assert cases[0].name == "Müller_ü" and not cases[0].error
    assert cases[0].inputs == (str(tmp_path / "ct.png"), str(tmp_path / "mr.png"))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../escape", "path separator"),
        ("sub/dir", "path separator"),
        ("back\\slash", "path separator"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        (".medfusion", "starts with '.'"),
        ("tab\there", "not allowed"),
    ],
)
def test_unsafe_names_refuse_their_row_only(tmp_path, name, reason):
    cases = read_manifest(write(tmp_path, f'a,b,name\nct.png,mr.png,"{name}"\nct.png,mr.png,fine\n'))
    assert reason in cases[0].error and "\n" not in cases[0].error
    assert cases[0].inputs == ()  # never resolved into an output path
    assert cases[1].error == "" and cases[1].name == "fine"


def test_duplicate_names_are_made_unique_in_manifest_order(tmp_path):
    text = "a,b,name\nct.png,mr.png,x\nct.png,mr.png,X\nct.png,mr.png,x-2\nct.png,mr.png,x\nct.png,mr.png,y\n"
    cases = read_manifest(write(tmp_path, text))
    names = [c.name for c in cases]
    assert names == ["x", "X-3", "x-2", "x-4", "y"]  # case-insensitive; skips a name the manifest uses itself
    assert len({n.casefold() for n in names}) == len(names)
    assert "also row 1's" in cases[1].note and "'X-3'" in cases[1].note
    assert cases[0].note == cases[2].note == cases[4].note == ""
    assert read_manifest(write(tmp_path, text)) == cases  # a rerun gives the same names (resume relies on it)


def test_names_from_file_names_and_empty_ones(tmp_path):
    cases = read_manifest(write(tmp_path, "a,b\nCT/2004.png,MRI/2004.png\nPET/2004.png,MRI/2004.png\n.png,b.png\n"))
    assert [c.name for c in cases] == ["2004", "2004-2", "row3"]
    assert case_output(tmp_path, cases[1]) == tmp_path / "2004-2.png"


def test_missing_column_is_a_one_line_error(tmp_path):
    with pytest.raises(MedFusionError, match="columns a,b"):
        read_manifest(write(tmp_path, "x,y\n1,2\n"))
