"""``medfusion app`` in a real browser at 1366 x 768: the server in a subprocess on 127.0.0.1, Debian's Chromium
driven by Playwright. Page loads with Slicer's rendered views (three slices with orientation letters and a 3-D
view), the misaligned sample defaulting to rigid registration -> Apply -> the 16-metric table appears and the views
change -> the opacity slider changes the views -> Cancel mid-run (deformable) within 2 s leaves no worker process
and no job folder -> Apply again works; T1 + PET at the defaults shows the uptake in colour with a legend, and
each Apply adds a named result. Screenshots are kept under ``tmp/artefacts/web``."""

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
from no_torch import BLOCK_TORCH

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
ALL_VIEWS_DRAWN = "[...document.querySelectorAll('#views img')].filter(i => i.naturalWidth > 0).length == 4"
VIEWPORT = {"width": 1366, "height": 768}
MAX_UPLOAD_MB = 2  # the server's upload limit here (the sample volumes written below are about 1 MB)

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
    # the server and the workers it starts run where importing torch raises: every Apply of these tests shows that
    # the web app fuses without torch (issue 21); an import of torch would end in an error on the page
    blocker = tmp_path_factory.mktemp("no-torch")
    (blocker / "sitecustomize.py").write_text(f"import sys\n{BLOCK_TORCH}", encoding="utf-8")
    path = os.pathsep.join(p for p in (str(blocker), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=path)
    blocked = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "importing torch is blocked" in blocked.stderr, blocked.stderr[-500:]
    log = open(tmp_path_factory.mktemp("web-log") / "server.log", "w+")
    data = tmp_path_factory.mktemp("web-data")  # the only folder the page may open from (--root)
    process = subprocess.Popen(
        [sys.executable, "-m", "MedFusionLib", "app", "--sample", "--port", str(port), "--root", str(data)]
        + ["--max-upload-mb", str(MAX_UPLOAD_MB)],
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
            viewport=VIEWPORT,
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
    from playwright.sync_api import expect

    # a menu closed just before may still be on screen (its closing transition), with an option of the same name
    expect(page.get_by_role("listbox")).to_have_count(0)
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


def in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and (box["x"] + box["width"] <= VIEWPORT["width"] and box["y"] + box["height"] <= VIEWPORT["height"])
    )


def assert_loaded_page_reads_right(page) -> None:
    """The sample's MR is misaligned by its header: the page defaults to rigid and says why; the slice views
    carry orientation letters and their name and position; Apply and Save fit a 1366 x 768 screen."""
    assert page.locator("#registration .v-select__selection").inner_text().strip() == "rigid"
    assert "rigid registration" in page.inner_text("#registration-note")
    assert page.inner_text("#status").startswith("Ready: Phantom CT + Phantom MR T2")
    letters = {edge: page.locator(f"#views .orientation-{edge}").all_inner_texts() for edge in ("left", "right")}
    assert sorted(letters["left"]) == ["A", "R", "R"] and sorted(letters["right"]) == ["L", "L", "P"], letters
    captions = page.locator("#views .view-caption").all_inner_texts()
    assert sorted(c.split()[0].rstrip(",") for c in captions) == ["Axial", "Coronal", "Sagittal"], captions
    assert in_viewport(page, "#apply") and in_viewport(page, "#save"), "Apply or Save is off screen at 1366 x 768"
    assert page.evaluate("document.scrollingElement.scrollHeight") <= VIEWPORT["height"], "the page itself scrolls"


def test_left_drag_sets_window_level_and_shift_move_moves_the_other_views(page):
    """Slicer's own interaction in the streamed views: a left-drag in the axial view changes the window/level of
    the volume shown (the corner text, from its display node, and the pixels), and with the crosshair linking the
    views, Shift + move in the axial view puts the coronal and sagittal slices through the point (their captions'
    positions move; the axial one stays)."""
    page.wait_for_function(ALL_VIEWS_DRAWN, timeout=90_000)
    axial = page.locator("#views img").nth(0)
    window_level = page.locator("#views .view-window-level")
    before_text = window_level.all_inner_texts()
    assert before_text[0].startswith("W ") and len(set(before_text)) == 1, before_text
    before = views(page, "0-before-drag")
    box = axial.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + 8 * step, y + 5 * step)
        time.sleep(0.05)
    page.mouse.up()
    page.wait_for_function(
        f"document.querySelector('#views .view-window-level').innerText != {before_text[0]!r}", timeout=10_000
    )
    dragged = views(page, "0-after-drag")
    assert np.abs(dragged - before).mean() > 1.0, "the drag changed the window/level text but not the views"

    captions = page.locator("#views .view-caption").all_inner_texts()
    page.keyboard.down("Shift")
    page.mouse.move(x - 40, y - 30)
    page.mouse.move(x - 45, y - 35)
    page.keyboard.up("Shift")
    deadline = time.monotonic() + 10
    while page.locator("#views .view-caption").all_inner_texts() == captions and time.monotonic() < deadline:
        time.sleep(0.2)
    moved = page.locator("#views .view-caption").all_inner_texts()
    assert moved[0] == captions[0], "Shift + move in the axial view moved the axial slice"
    assert moved[1] != captions[1] and moved[2] != captions[2], (captions, moved)


def test_the_web_app_fuses_shows_and_cancels(page, server):
    from MedFusionLib.core import options

    page.wait_for_function(ALL_VIEWS_DRAWN, timeout=90_000)
    assert_loaded_page_reads_right(page)

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
    wait_status(page, ["B-spline"], timeout=120)  # the stage whose optimiser does not stop between iterations
    cancelled_at = time.monotonic()
    page.click("#apply")
    status = wait_status(page, ["Cancelled", "Done", "Failed"], timeout=30)
    cancel_seconds = time.monotonic() - cancelled_at
    assert status.startswith("Cancelled"), status
    assert page.inner_text("#apply").strip().lower() == "apply"
    assert not job_processes(server), "a worker process survived Cancel"
    assert not list(server["tmp"].glob("medfusion-job-*")), "a job folder (patient data) survived Cancel"
    views(page, "5-cancelled")
    assert cancel_seconds <= 2.0, f"Cancel during deformable registration took {cancel_seconds:.1f} s"

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


def test_default_pet_display_is_the_clinical_overlay_with_a_legend_and_a_3d_view(page):
    """T1 + PET with every choice at its default: the uptake in colour over grey anatomy (>= 2 % of the page's
    pixels red/orange), a legend beside the views, the 3-D view changing when the result arrives, the metric
    table scrolling inside its panel with Save still on screen."""
    from PIL import Image

    choose(page, "reference", "Phantom MR T2")
    choose(page, "moving", "Phantom PET")
    # (the MR was registered to the CT by the first test, so the header check now asks for rigid: left as is)
    threed = page.locator("#views img").nth(1)  # the grid's upper right: the 3-D view
    before = np.asarray(Image.open(io.BytesIO(threed.screenshot())).convert("L"), dtype=float)
    press_apply(page)
    status = wait_status(page, ["Done", "Failed", "Cancelled"])
    assert status.startswith("Done: Phantom MR T2 + Phantom PET fused"), page.inner_text("#error")
    views(page, "7-pet-default")
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=int)
    (ARTEFACTS / "8-pet-default-page.png").write_bytes(page.screenshot())
    red, green, blue = shot[..., 0], shot[..., 1], shot[..., 2]
    uptake = ((red - blue > 100) & (red - green > 30)).mean()
    assert uptake >= 0.02, f"only {100 * uptake:.2f} % of the page shows the uptake in colour"
    assert "Phantom PET (pet scale)" in page.inner_text("#legend") and page.locator("#legend-bar").is_visible()
    after = np.asarray(Image.open(io.BytesIO(threed.screenshot())).convert("L"), dtype=float)
    assert np.abs(after - before).mean() > 1.0, "the 3-D view did not change when the result arrived"
    scroller = page.locator("#metrics-panel")
    assert scroller.evaluate("e => e.scrollHeight > e.clientHeight"), "the metric table should scroll in its panel"
    scroller.evaluate("e => e.scrollTop = e.scrollHeight")
    assert in_viewport(page, "#save") and in_viewport(page, "#views"), "scrolling the table moved the page"


def test_each_apply_gives_its_own_named_result_and_earlier_ones_stay_selectable(page):
    from MedFusionLib.core import options

    results_before = result_names(page)
    choose(page, "method", "mean")
    choose(page, "mode", options.MODE.label("slice"))
    press_apply(page)
    status = wait_status(page, ["Done", "Failed", "Cancelled"])
    assert status.startswith("Done: Phantom MR T2 + Phantom PET fused (mean, slice)"), page.inner_text("#error")
    names = result_names(page)
    assert names[: len(results_before)] == results_before and len(names) == len(results_before) + 1
    assert names[-1] == "Phantom MR T2 + Phantom PET fused (mean, slice)" and len(set(names)) == len(names)
    choose(page, "result", results_before[-1])
    assert wait_status(page, ["Showing"], timeout=10) == f"Showing {results_before[-1]}"


def result_names(page) -> list[str]:
    from playwright.sync_api import expect

    expect(page.get_by_role("listbox")).to_have_count(0)  # as in choose(): no closing menu still on screen
    page.locator("#result .v-field").click()
    page.get_by_role("option").first.wait_for()  # all_inner_texts does not wait for the menu to open
    names = [n.strip() for n in page.get_by_role("option").all_inner_texts()]
    page.keyboard.press("Escape")
    return names


def test_bad_uploads_give_one_clear_message_and_the_session_keeps_working(page, server):
    """A non-image file, a 2-D image and an upload over the server's size limit: one line each on the page,
    no copy left behind, and the session opens the next volume."""
    import SimpleITK as sitk

    not_an_image = server["data"] / "notes.nii.gz"
    not_an_image.write_text("not an image")
    flat = server["data"] / "slice.png"
    sitk.WriteImage(sitk.Image(32, 32, sitk.sitkUInt8), str(flat))
    too_large = server["data"] / "large.nii.gz"
    too_large.write_bytes(os.urandom(int((MAX_UPLOAD_MB + 1) * 2**20)))
    for path, words in (
        (not_an_image, "notes.nii.gz"),
        (flat, "3-D volume is needed"),
        (too_large, f"over the upload limit of {MAX_UPLOAD_MB} MB"),
    ):
        page.locator("input#upload").set_input_files(str(path))
        page.wait_for_function(f"document.querySelector('#error').innerText.includes({words!r})", timeout=30_000)
        message = page.inner_text("#error")
        assert words in message and "\n" not in message.strip() and "Traceback" not in message, message
    assert not list(server["tmp"].glob("medfusion-upload-*")), "an uploaded copy was left behind"
    good = server["data"] / "after PET.nrrd"
    from MedFusionLib.samples.pet import make_phantom_pet

    sitk.WriteImage(make_phantom_pet(9), str(good))
    page.fill("input#open-path", str(good))
    page.click("#open")
    assert wait_status(page, ["Opened", "rror"], timeout=30) == "Opened after PET"
    assert page.inner_text("#error").strip() == ""


def test_a_refused_registration_can_be_fused_anyway_and_the_device_reaches_the_job(page, server):
    """A moving volume unrelated to the reference (smoothed noise on the CT's grid): the plausibility check stops
    the run with one line and the page offers Fuse anyway, which keeps the registration and fuses. The device
    choice goes to the worker: CUDA on a machine without ONNX Runtime's CUDA provider is its one-line error."""
    import SimpleITK as sitk

    from MedFusionLib.samples.phantom import make_phantom_pair

    ct = make_phantom_pair(7).ct
    noise = np.random.default_rng(0).random(sitk.GetArrayFromImage(ct).shape).astype(np.float32) * 1000
    unrelated = sitk.GetImageFromArray(noise)
    unrelated.CopyInformation(ct)
    path = server["data"] / "unrelated.nrrd"
    sitk.WriteImage(sitk.SmoothingRecursiveGaussian(unrelated, 4.0), str(path))
    page.fill("input#open-path", str(path))
    page.click("#open")
    assert wait_status(page, ["Opened unrelated", "rror"], timeout=30) == "Opened unrelated", page.inner_text("#error")
    choose(page, "reference", "Phantom CT")
    choose(page, "moving", "unrelated")
    choose(page, "method", "mean")
    choose(page, "registration", "rigid")
    assert not page.locator("#fuse-anyway").is_visible()
    press_apply(page)
    assert wait_status(page, ["Done", "Stopped", "Failed", "Cancelled"]) == "Stopped: the registration looks wrong."
    message = page.inner_text("#error")
    assert message.startswith("The registration looks wrong: weak final similarity") and "\n" not in message.strip()
    page.click("#fuse-anyway")
    page.wait_for_function("!document.querySelector('#status').innerText.startsWith('Stopped')", timeout=10_000)
    status = wait_status(page, ["Done", "Stopped", "Failed", "Cancelled"])
    assert status == "Done: Phantom CT + unrelated fused (mean, slice), registered rigid", page.inner_text("#error")
    assert page.inner_text("#error").strip() == "" and not page.locator("#fuse-anyway").is_visible()

    from MedFusionLib.inference.devices import CUDA_PROVIDER, available_providers

    choose(page, "registration", "none")
    choose(page, "device", "GPU (CUDA)")
    press_apply(page)
    status = wait_status(page, ["Done", "Failed", "Cancelled"])
    if CUDA_PROVIDER in available_providers():
        assert status.startswith("Done"), page.inner_text("#error")
    else:
        assert status == "Failed." and "no CUDA GPU available" in page.inner_text("#error")
    choose(page, "device", "auto (GPU if available)")


def test_a_second_tab_is_read_only_until_the_first_closes(page, server):
    """One server holds one scene and one state: a tab opened while another holds the session says so over the
    whole page and the server refuses its actions; closing the first tab hands the session to it. (Last in the
    file: it closes the module's page.)"""
    page.wait_for_function(ALL_VIEWS_DRAWN, timeout=90_000)
    assert not page.locator("#session-banner").is_visible()
    second = page.context.new_page()
    second.goto(server["url"])
    second.wait_for_selector("#session-banner", state="visible", timeout=60_000)
    assert "open in another browser tab" in second.inner_text("#session-banner")
    second.wait_for_function(ALL_VIEWS_DRAWN, timeout=60_000)  # it still shows the session's views
    box = second.locator("#apply").bounding_box()
    covered = second.evaluate(
        "([x, y]) => !!document.elementFromPoint(x, y).closest('#session-banner')",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert covered, "the read-only tab's Apply button can be clicked"
    time.sleep(1.0)
    assert not page.locator("#session-banner").is_visible(), "the tab holding the session was made read-only"

    # the server refuses the read-only tab's Apply even when its banner is removed, and tells that tab alone
    status_before = page.inner_text("#status")
    second.evaluate("document.querySelector('#session-banner').remove()")
    second.click("#apply")
    second.wait_for_function("document.querySelector('#error').innerText.includes('Read-only')", timeout=10_000)
    time.sleep(1.0)
    assert page.inner_text("#apply").strip().lower() == "apply" and page.inner_text("#status") == status_before
    assert "Read-only" not in page.inner_text("#error")

    # the first tab closes: the second takes over and can work
    import SimpleITK as sitk

    from MedFusionLib.samples.pet import make_phantom_pet

    taken_over = server["data"] / "takeover PET.nrrd"
    sitk.WriteImage(make_phantom_pet(4), str(taken_over))
    page.close()
    second.wait_for_function("!document.querySelector('#session-banner')", timeout=30_000)
    second.fill("input#open-path", str(taken_over))
    second.click("#open")
    status = wait_status(second, ["Opened takeover", "rror"], timeout=30)
    assert status == "Opened takeover PET", second.inner_text("#error")
