"""``medfusion app`` in a real browser: the server in a subprocess on 127.0.0.1, Debian's Chromium driven by
Playwright. Page loads with Slicer's rendered views -> Apply -> the 16-metric table appears and the views change
-> the opacity slider changes the views (opacity 0 shows the reference alone again) -> Cancel mid-run leaves no
worker process and no job folder -> Apply again works. Screenshots are kept under ``tmp/artefacts/web``."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTEFACTS = Path(__file__).resolve().parents[2] / "tmp" / "artefacts" / "web"
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALL_VIEWS_DRAWN = "[...document.querySelectorAll('#views img')].filter(i => i.naturalWidth > 0).length == 3"

playwright_api = pytest.importorskip("playwright.sync_api", reason="the 'web' extra is not installed")
pytest.importorskip("trame_slicer", reason="the 'web' extra is not installed")
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``medfusion app --sample`` on a free local port, with its own TMPDIR (to see its job folders)."""
    tmp = tmp_path_factory.mktemp("web-tmp")
    port = _free_port()
    env = dict(os.environ, TMPDIR=str(tmp))
    log = open(tmp_path_factory.mktemp("web-log") / "server.log", "w+")
    data = tmp_path_factory.mktemp("web-data")  # the only folder the page may open from (--root)
    process = subprocess.Popen(
        [sys.executable, "-m", "MedFusionLib", "app", "--sample", "--port", str(port), "--root", str(data)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"medfusion app exited early:\n{log.read()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("medfusion app did not start listening within 120 s")
    yield {
        "url": f"http://127.0.0.1:{port}/",
        "process": process,
        "tmp": tmp,
        "data": data,
    }
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=BROWSER_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(server["url"])
        yield page
        context.close()


def views(page, name: str, timeout: float = 15.0) -> np.ndarray:
    """The three views as a grey array once two frames 0.5 s apart agree (the server renders and streams
    asynchronously), saved as an artefact."""
    from PIL import Image

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    previous = None
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.5)
        data = page.locator("#views").screenshot()
        current = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)
        if previous is not None and (np.abs(current - previous).mean() < 0.05 or time.monotonic() > deadline):
            (ARTEFACTS / f"{name}.png").write_bytes(data)
            return current
        previous = current


def choose(page, element_id: str, label: str) -> None:
    page.locator(f"#{element_id} .v-field").click()
    page.get_by_role("option", name=label, exact=True).click()


def wait_status(page, words, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = page.inner_text("#status")
        if any(word in status for word in words):
            return status
        time.sleep(0.1)
    raise AssertionError(f"status {page.inner_text('#status')!r} never showed one of {words}")


def assert_serves_only_the_page(server, files) -> None:
    """Listens on 127.0.0.1 only, and no file (one the user opened, or any other) can be fetched over HTTP."""
    import urllib.error
    import urllib.parse
    import urllib.request

    import psutil

    listening = [
        c for c in psutil.Process(server["process"].pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
    ]
    assert listening and all(c.laddr.ip == "127.0.0.1" for c in listening), listening
    for path in files:
        for url in (
            server["url"] + urllib.parse.quote(str(path).lstrip("/")),
            server["url"] + "../../../../.." + urllib.parse.quote(str(path)),
            server["url"] + "%2e%2e/%2e%2e/%2e%2e/%2e%2e" + urllib.parse.quote(str(path)),
        ):
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    body = response.read()
            except urllib.error.HTTPError:
                continue
            assert path.read_bytes()[:64] not in body, f"{path} is served at {url}"


def press_apply(page) -> None:
    """Apply, then wait until the button has turned into Cancel (the job has started)."""
    page.click("#apply")
    page.wait_for_function(
        "document.querySelector('#apply').innerText.trim().toLowerCase() == 'cancel'", timeout=10_000
    )


def job_processes(server) -> list:
    import psutil

    return psutil.Process(server["process"].pid).children(recursive=True)


def test_the_web_app_fuses_shows_and_cancels(page, server):
    from MedFusionLib.core import options

    page.wait_for_function(ALL_VIEWS_DRAWN, timeout=90_000)

    # more volumes: one opened by its path on the server, one uploaded (read, then deleted at once)
    import SimpleITK as sitk

    from MedFusionLib.samples.pet import make_phantom_pet

    extra = server["data"] / "extra PET.nrrd"
    sitk.WriteImage(make_phantom_pet(3), str(extra))
    page.fill("input#open-path", str(extra))
    page.click("#open")
    assert wait_status(page, ["Opened", "rror"], timeout=30) == "Opened extra PET", page.inner_text("#error")
    uploaded = server["data"] / "uploaded PET.nrrd"
    sitk.WriteImage(make_phantom_pet(5), str(uploaded))
    page.locator("input#upload").set_input_files(str(uploaded))
    assert wait_status(page, ["uploaded", "rror"], timeout=30) == "Opened uploaded PET (uploaded)"
    assert not list(server["tmp"].glob("medfusion-upload-*")), "the uploaded copy was not deleted"
    page.locator("#moving .v-field").click()
    names = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    assert [n.strip() for n in names] == ["Phantom CT", "Phantom MR T2", "Phantom PET", "extra PET", "uploaded PET"]

    assert_serves_only_the_page(server, [extra, Path("/etc/os-release")])

    before = views(page, "1-loaded")
    assert before.std() > 10, "the views show no volume"
    assert page.inner_text("#apply").strip().lower() == "apply"

    # Apply: the job runs outside the UI thread, the button becomes Cancel, then the table and the overlay
    press_apply(page)
    status = wait_status(page, ["Done", "Failed", "Cancelled"])
    assert status.startswith("Done"), page.inner_text("#error")
    page.wait_for_function("document.querySelectorAll('#metrics tbody tr').length == 16", timeout=10_000)
    rows = page.locator("#metrics tbody tr").all_inner_texts()
    assert rows[0].split()[0] == "EN"
    fused = views(page, "2-fused")
    assert np.abs(fused - before).mean() > 1.0, "Apply did not change the views"

    # the opacity slider: 0 shows the reference alone again, 1 the fused volume alone
    slider = page.locator("#opacity [role=slider]")
    slider.focus()
    page.keyboard.press("Home")
    transparent = views(page, "3-opacity-0")
    assert np.abs(transparent - fused).mean() > 1.0, "the opacity slider did not change the views"
    assert np.abs(transparent - before).mean() < 1.0, "at opacity 0 the views should show the reference alone"
    page.keyboard.press("End")
    opaque = views(page, "4-opacity-1")
    assert np.abs(opaque - transparent).mean() > 1.0

    # Cancel mid-run (a slow choice: deformable registration), then nothing of the job survives
    choose(page, "registration", "deformable")
    choose(page, "mode", options.MODE.label("volume"))
    press_apply(page)
    wait_status(page, ["registration", "aligning", "fusing", "metrics", "level"], timeout=60)
    assert job_processes(server), "the job should be running"
    cancelled_at = time.monotonic()
    page.click("#apply")
    status = wait_status(page, ["Cancelled", "Done", "Failed"], timeout=30)
    assert status.startswith("Cancelled"), status
    assert time.monotonic() - cancelled_at < 10
    assert page.inner_text("#apply").strip().lower() == "apply"
    assert not job_processes(server), "a worker process survived Cancel"
    assert not list(server["tmp"].glob("medfusion-job-*")), "a job folder (patient data) survived Cancel"
    views(page, "5-cancelled")

    # Apply after Cancel works
    choose(page, "registration", "rigid")
    choose(page, "mode", options.MODE.label("slice"))
    press_apply(page)
    status = wait_status(page, ["Done", "Failed", "Cancelled"])
    assert status.startswith("Done"), page.inner_text("#error")
    page.wait_for_function("document.querySelectorAll('#metrics tbody tr').length == 16", timeout=10_000)
    registered = views(page, "6-registered")
    assert np.abs(registered - before).mean() > 1.0
    assert not list(server["tmp"].glob("medfusion-job-*"))


def test_app_command_errors_are_one_line(tmp_path):
    """A taken port or a missing FILE: one line, exit code 2, no server left running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, expected in (
            (["--port", str(port)], "cannot listen on 127.0.0.1"),
            ([str(tmp_path / "missing.nii.gz"), "--port", str(_free_port())], "missing.nii.gz"),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "MedFusionLib", "app", *args],
                capture_output=True,
                text=True,
                timeout=120,
                env=dict(os.environ, TMPDIR=str(tmp_path)),
            )
            lines = [line for line in done.stderr.splitlines() if line.startswith("medfusion:")]
            assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr[-2000:]
            assert "Traceback" not in done.stderr
