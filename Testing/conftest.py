"""Shared pytest fixtures: where the shared real data lives, and a skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDFUSION_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (or $MEDFUSION_SHARED); tests needing it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent: real-data test skipped")
    return SHARED


@pytest.fixture(scope="session")
def shared_data(shared_dir: Path) -> Path:
    path = shared_dir / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is absent: real-data test skipped")
    return path


@pytest.fixture
def quiet_progress(monkeypatch) -> None:
    """No periodic progress lines on stderr (tests of one-line errors count stderr lines; progress lines are
    tested on their own). Command-line test modules use it with ``pytestmark = pytest.mark.usefixtures(...)``."""
    monkeypatch.setenv("MEDFUSION_PROGRESS_SECONDS", "1e9")


def pytest_collection_modifyitems(config, items) -> None:
    """Mark tests by what they need, so ``-m "not real_data"`` and friends select without hand-kept lists."""
    for item in items:
        if {"shared_dir", "shared_data"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)
        if "test_scene_logic" in item.nodeid:
            item.add_marker(pytest.mark.slicer)
