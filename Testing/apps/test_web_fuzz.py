"""Hypothesis fuzzing of what the page and a manifest can send: the web app's open/save path checks and upload
checks (pure functions, then the real open and upload handlers), and the manifest reader. Every case either
passes with a result inside the rules or fails with a one-line MedFusionError; nothing else escapes.
2,500 cases in all (1,000 paths + 700 uploads + 500 manifests + 150 + 150 handler calls)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from MedFusionLib.apps.web import security
from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.study.manifest import read_manifest

SEGMENTS = st.sampled_from(["", ".", "..", "escape", "vol.nrrd", "sub", "sub/..", "/", "//", "~", "\0", "é", " "])
TYPED = st.one_of(st.lists(SEGMENTS, max_size=6).map("/".join), st.text(max_size=40))


def fuzz(cases: int):
    """Seeded (derandomised), no deadline, no example database: the same cases on every run."""
    return settings(
        max_examples=cases,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Path:
    """A served folder with one tiny volume, a sub-folder, and a symlink out of it to a volume outside."""
    base = tmp_path_factory.mktemp("fuzz-web")
    root = base / "served"
    (root / "sub").mkdir(parents=True)
    image = sitk.Image(6, 6, 6, sitk.sitkUInt8)
    image[3, 3, 3] = 200
    sitk.WriteImage(image, str(root / "vol.nrrd"))
    sitk.WriteImage(image, str(base / "outside.nrrd"))
    (root / "escape").symlink_to(base)
    return root.resolve()


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


@fuzz(500)
@given(typed=TYPED)
def test_open_path_check_never_lets_a_path_out(served, typed):
    try:
        path = security.path_in_root(served, typed)
    except MedFusionError as err:
        assert "\n" not in str(err)
        return
    assert _inside(served, path.resolve()) and path.exists()


@fuzz(500)
@given(typed=TYPED)
def test_save_folder_check_never_lets_a_path_out(served, typed):
    try:
        path = security.save_folder_in_root(served, typed)
    except MedFusionError as err:
        assert "\n" not in str(err)
        return
    assert _inside(served, path) and not (path.exists() and not path.is_dir())


CONTENT = st.one_of(
    st.binary(max_size=300),
    st.lists(st.binary(max_size=200), max_size=4),
    st.none(),
    st.integers(),
    st.text(max_size=20),
    st.lists(st.one_of(st.binary(max_size=50), st.integers()), max_size=3),
)
NAMES = st.one_of(st.text(max_size=30), st.sampled_from([".", "..", "../x", "a/b", "a\\b", "", "x" * 300]), st.none())


@fuzz(700)
@given(entry=st.one_of(st.fixed_dictionaries({"name": NAMES, "content": CONTENT}), st.text(max_size=10), st.none()))
def test_upload_check_gives_a_plain_name_and_a_bounded_size(entry):
    policy = security.WebPolicy(root=Path("/"), max_upload_bytes=400)
    try:
        name, content = security.upload_entry(entry, policy)
    except MedFusionError as err:
        assert "\n" not in str(err)
        return
    assert name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\0" not in name
    assert Path(name).name == name and isinstance(content, bytes) and len(content) <= 400


@fuzz(500)
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.lists(
            st.lists(
                st.sampled_from(["a", "b", "name", "group", "x.nii", "../y.png", "", '"', "é", ",", "\0"]), max_size=5
            ).map(",".join),
            max_size=6,
        ).map(lambda rows: "\n".join(rows).encode("utf-8")),
    )
)
def test_manifest_reader_gives_cases_or_one_line(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.csv"
        path.write_bytes(data)
        try:
            cases = read_manifest(path)
        except MedFusionError as err:
            assert "\n" not in str(err)
            return
        assert cases and all(case.error or len(case.inputs) == 2 for case in cases)
        assert all("/" not in case.name for case in cases if not case.error)


@pytest.fixture(scope="module")
def web_app(served):
    pytest.importorskip("trame_slicer", reason="the 'web' extra is not installed")
    from MedFusionLib.apps.web.app import FusionWebApp

    app = FusionWebApp(sample=False)
    app.policy = security.WebPolicy(root=served, max_upload_bytes=2000)
    yield app
    app.shutdown()


@fuzz(150)
@given(typed=TYPED)
def test_open_handler_opens_only_files_under_the_root(web_app, served, typed):
    before = len(web_app.state.volumes)
    web_app.state.open_path = typed
    web_app.on_open_path()
    opened = len(web_app.state.volumes) > before
    allowed = _inside(served, (served / typed.strip()).resolve()) if typed.strip() and "\0" not in typed else False
    assert not opened or allowed


@fuzz(150)
@given(
    name=NAMES,
    content=st.one_of(st.binary(max_size=3000), st.just((Path(__file__).parent / "web_probe.py").read_bytes())),
)
def test_upload_handler_survives_any_upload(web_app, name, content):
    web_app.on_upload({"name": name, "content": content})
    assert web_app.state.upload is None  # the handler ran to its end: the session goes on
