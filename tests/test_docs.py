"""The documents cannot point nowhere: every relative link of the README and of docs/ names a file that exists,
and every #anchor a heading of the page it names, slugged as GitHub does."""
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]*)\)")
CODE_BLOCK = re.compile(r"^```.*?^```", re.S | re.M)


@functools.cache   # pages link the same pages again and again
def anchors(page: Path) -> frozenset[str]:
    """GitHub's heading ids: lower case, punctuation other than - and _ dropped, spaces made hyphens."""
    headings = re.findall(r"^#+ (.+)$", CODE_BLOCK.sub("", page.read_text()), re.M)
    return frozenset(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings)


def test_the_anchors_are_slugged_as_github_does():
    page = ROOT / "docs" / "defaults.md"
    assert {"report-001s-mlps-steps-of-their-own", "mlp-deep-the-same-steps", "the-goal"} <= anchors(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_and_anchor_of_the_page_exists(page):
    for target in LINK.findall(CODE_BLOCK.sub("", page.read_text())):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path) if path else page
        assert linked.exists(), f"{page.name} links {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name} links {target}, but {linked.name} has no such heading"
