"""The docs hold together: every relative link in README.md and docs/ reaches a file (and, with ``#anchor``, a heading
of it), the newcomer's path README -> architecture -> evaluation -> a family page is linked, every registered method
has a family page, and the pages that carry figures say when they were measured."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from MedFusionLib.fusion import available_methods

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(path: Path) -> str:
    """The page without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def _slugs(path: Path) -> set[str]:
    """GitHub's heading anchors of a page (lower case, punctuation dropped, spaces to hyphens, repeats numbered)."""
    slugs: set[str] = set()
    counts: dict[str, int] = {}
    for line in _prose(path).splitlines():
        if m := re.match(r"#{1,6} (.+)", line):
            base = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            n = counts.get(base, 0)
            slugs.add(base if n == 0 else f"{base}-{n}")
            counts[base] = n + 1
    return slugs


def _links(path: Path) -> list[str]:
    return [t for t in LINK.findall(_prose(path)) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_reach_a_file_and_a_heading(page):
    for target in _links(page):
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{page.name}: {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _slugs(dest), f"{page.name}: {target}"


def _targets(page: Path) -> set[Path]:
    return {(page.parent / t.partition("#")[0]).resolve() for t in _links(page) if t.partition("#")[0]}


def test_the_newcomers_path_is_linked():
    path = [ROOT / "README.md", DOCS / "architecture.md", DOCS / "evaluation.md", DOCS / "methods" / "README.md"]
    for here, there in zip(path, path[1:]):
        assert there.resolve() in _targets(here), f"{here.name} does not link {there.name}"
    families = {m.family for m in available_methods()}
    index = _prose(DOCS / "methods" / "README.md")
    for m in available_methods():
        assert f"`{m.name}`" in index, m.name
    assert len(_targets(DOCS / "methods" / "README.md") & set((DOCS / "methods").glob("*.md"))) >= len(families)


FIGURE_PAGES = ["evaluation.md", "deep-fusion.md", "study.md", "history.md"] + [
    f"methods/{p.name}" for p in sorted((DOCS / "methods").glob("*.md")) if p.name != "README.md"
]


@pytest.mark.parametrize("name", FIGURE_PAGES)
def test_pages_with_figures_say_when_they_were_measured(name):
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", (DOCS / name).read_text(encoding="utf-8")), name
