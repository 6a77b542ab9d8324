"""Re-shoot the web app's screenshots (docs/images/web-*.png, Resources/Screenshots/*.png) in Chromium at 1366 x 768.

    python Resources/Screenshots/shoot_web.py ../shared/data/volumes/spm  # T1.nii.gz and PET.nii.gz, at defaults

Each step is taken with every choice at its default; the status line of each step is printed. The app serves a
new empty temporary folder (--root), so the Save field shows its default, a folder relative to it, and the page
no path of this machine.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
DOCS, RESOURCES = ROOT / "docs" / "images", ROOT / "Resources" / "Screenshots"
VIEWS_DRAWN = "[...document.querySelectorAll('#views img')].filter(i => i.naturalWidth > 0).length == 4"


def wait_status(page, words, timeout=600.0) -> str:
    """The status line once it shows one of ``words`` (the server streams it)."""
    test = " || ".join(f"document.querySelector('#status').innerText.includes({word!r})" for word in words)
    page.wait_for_function(test, timeout=timeout * 1000)
    return page.inner_text("#status")


def shoot(page, name: str, *folders: Path) -> None:
    time.sleep(2.5)  # the streamed views settle
    for folder in folders:
        page.screenshot(path=str(folder / name))
    print(f"{name}: {page.inner_text('#status')}", flush=True)


def main(data: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = data.resolve()  # the server runs in the served folder
    served = Path(tempfile.mkdtemp(prefix="medfusion-shots-"))
    command = [sys.executable, "-m", "MedFusionLib", "app", str(data / "T1.nii.gz"), str(data / "PET.nii.gz")]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--root", str(served)],
        cwd=served,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"medfusion app exited with code {server.returncode}; run it alone to see why")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function(VIEWS_DRAWN, timeout=120_000)
            shoot(page, "web-1-loaded.png", DOCS)
            shoot(page, "medfusion-loaded.png", RESOURCES)
            page.click("#apply")
            wait_status(page, ["iteration", "fusing", "slice", "metrics"])
            shoot(page, "web-2-running.png", DOCS)
            wait_status(page, ["Done", "Failed", "Cancelled"])
            shoot(page, "web-3-fused.png", DOCS)
            shoot(page, "medfusion-fused.png", RESOURCES)
            page.locator("#view-layout .v-field").click()
            page.get_by_role("option", name="three slices", exact=True).click()
            shoot(page, "web-4-three-slices.png", DOCS)
            page.click("#save")  # into the default folder, under the served one
            page.wait_for_function("document.querySelector('#saved').innerText.startsWith('Saved')")
            shoot(page, "web-5-saved.png", DOCS)
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(served, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
