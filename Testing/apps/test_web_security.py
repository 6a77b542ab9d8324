"""The web app serves only its folder: paths outside ``--root`` refused for open and save (symlinks too), safe
upload names, an upload size limit with the session alive, the server's own check of a running job, and an
access token on a non-loopback bind (a network namespace with its own address; skipped where none can be made)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import SimpleITK as sitk

from MedFusionLib.apps.web import security
from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.samples.pet import make_phantom_pet

PROBE = Path(__file__).with_name("web_probe.py")


@pytest.fixture
def root(tmp_path) -> Path:
    (tmp_path / "served").mkdir()
    sitk.WriteImage(make_phantom_pet(3), str(tmp_path / "served" / "pet.nrrd"))
    sitk.WriteImage(make_phantom_pet(3), str(tmp_path / "secret.nrrd"))
    (tmp_path / "served" / "escape").symlink_to(tmp_path)
    return tmp_path / "served"


@pytest.mark.parametrize(
    "typed", ["../secret.nrrd", "/etc/hostname", "escape/secret.nrrd", "pet.nrrd/../../secret.nrrd"]
)
def test_paths_outside_the_root_are_refused(root, typed):
    with pytest.raises(MedFusionError, match="outside the folder this app serves"):
        security.path_in_root(root.resolve(), typed)
    with pytest.raises(MedFusionError, match="outside the folder this app serves"):
        security.save_folder_in_root(root.resolve(), typed)


def test_paths_inside_the_root_are_allowed(root):
    assert security.path_in_root(root.resolve(), "pet.nrrd") == (root / "pet.nrrd").resolve()
    assert security.path_in_root(root.resolve(), str(root / "pet.nrrd")) == (root / "pet.nrrd").resolve()
    assert security.save_folder_in_root(root.resolve(), "out/new") == (root / "out" / "new").resolve()
    with pytest.raises(MedFusionError, match="no such file"):
        security.path_in_root(root.resolve(), "missing.nii.gz")


@pytest.mark.parametrize(
    "name", ["", ".", "..", "a/b.nrrd", "..\\x.nrrd", "/etc/passwd", "x\0.nrrd", "a\nb", "n" * 300, None]
)
def test_unsafe_upload_names_are_refused(name):
    with pytest.raises(MedFusionError):
        security.upload_name(name)


def test_upload_size_limit_and_token_choice(tmp_path):
    policy = security.make_policy(tmp_path, "127.0.0.1", None, 0.001)
    assert policy.token is None and policy.max_upload_bytes == 1048
    with pytest.raises(MedFusionError, match="over the upload limit"):
        security.upload_entry({"name": "big.nrrd", "content": [b"x" * 1000, b"x" * 100]}, policy)
    assert security.upload_entry({"name": "ok.nrrd", "content": b"x" * 10}, policy) == ("ok.nrrd", b"x" * 10)
    assert security.make_policy(tmp_path, "0.0.0.0", None, None).token  # a random token for every address
    assert security.make_policy(tmp_path, "::", None, None).token
    assert security.make_policy(tmp_path, "example.org", None, None).token
    assert security.make_policy(tmp_path, "::1", None, None).token is None
    with pytest.raises(MedFusionError, match="at least 16"):
        security.make_policy(tmp_path, "0.0.0.0", "short", None)
    with pytest.raises(MedFusionError, match="--root"):
        security.make_policy(tmp_path / "missing", "127.0.0.1", None, None)
    assert not security.token_matches("a" * 20, None, "b" * 20) and security.token_matches("a" * 20, None, "a" * 20)


@pytest.fixture(scope="module")
def web_app():
    pytest.importorskip("trame_slicer", reason="the 'web' extra is not installed")
    from MedFusionLib.apps.web.app import FusionWebApp

    app = FusionWebApp(sample=False)
    yield app
    app.shutdown()


def _volume_names(app) -> list[str]:
    return [item["title"] for item in app.state.volumes]


def test_page_cannot_open_or_save_outside_its_root(web_app, root):
    web_app.policy = security.make_policy(root, "127.0.0.1", None, None)
    before = _volume_names(web_app)
    for typed in ("../secret.nrrd", str(root.parent / "secret.nrrd"), "escape/secret.nrrd"):
        web_app.state.open_path = typed
        web_app.on_open_path()
        assert "outside the folder this app serves" in web_app.state.error
    assert _volume_names(web_app) == before
    web_app.result = SimpleNamespace()  # a save is checked before anything of the result is read
    try:
        web_app.state.save_path = str(root.parent / "elsewhere")
        web_app.on_save()
        assert "outside the folder this app serves" in web_app.state.error
        assert not (root.parent / "elsewhere").exists()
    finally:
        web_app.result = None
    web_app.state.open_path = "pet.nrrd"
    web_app.on_open_path()
    assert web_app.state.error == "" and len(_volume_names(web_app)) == len(before) + 1


def test_oversize_or_badly_named_upload_is_refused_and_the_session_goes_on(web_app, root, tmp_path):
    web_app.policy = security.make_policy(root, "127.0.0.1", None, 0.05)
    content = (root / "pet.nrrd").read_bytes()
    assert len(content) > 0.05 * 2**20
    before = _volume_names(web_app)
    for entry, expected in (
        ({"name": "big.nrrd", "content": content}, "over the upload limit"),
        ({"name": "..", "content": b"x"}, "not a plain file name"),
        ({"name": ".", "content": b"x"}, "not a plain file name"),
        ({"name": "../../x.nrrd", "content": b"x"}, "not a plain file name"),
        ("not a file", "not a file"),
    ):
        web_app.on_upload(entry)
        assert expected in web_app.state.error
    assert _volume_names(web_app) == before
    small = tmp_path / "small.nrrd"
    image = sitk.Image(8, 8, 8, sitk.sitkUInt8)
    image[4, 4, 4] = 200
    sitk.WriteImage(image, str(small))
    web_app.on_upload({"name": "small.nrrd", "content": small.read_bytes()})
    assert web_app.state.error == "" and len(_volume_names(web_app)) == len(before) + 1


def test_server_refuses_page_actions_while_a_job_runs(web_app, root):
    web_app.policy = security.make_policy(root, "127.0.0.1", None, None)
    before = _volume_names(web_app)
    web_app._job = SimpleNamespace()  # any job object: the handlers only ask whether one is running
    try:
        web_app.state.open_path = "pet.nrrd"
        web_app.on_open_path()
        assert "a fusion is running" in web_app.state.error
    finally:
        web_app._job = None
    assert _volume_names(web_app) == before


def _in_namespace(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["unshare", "-rn", "sh", "-c", script], capture_output=True, encoding="utf-8", errors="replace", timeout=240
    )


def test_non_loopback_bind_refuses_every_request_without_the_token():
    pytest.importorskip("trame_slicer", reason="the 'web' extra is not installed")
    if shutil.which("unshare") is None or _in_namespace("ip link set lo up").returncode != 0:
        pytest.skip("no network namespace can be made here (unshare -rn)")
    address = "10.200.0.1"
    done = _in_namespace(
        f"ip link set lo up && ip addr add {address}/32 dev lo && {sys.executable} {PROBE} {address} 8795"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "?token=" in seen["line"], seen
    assert seen["bare"] == seen["index"] == seen["wrong"] == seen["ws"] == 403, seen
    assert seen["with_token"] == seen["cookie"] == 200, seen
