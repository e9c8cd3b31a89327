"""Every relative link in README.md, docs/*.md and bench/README.md names a file that
exists and, with a #fragment, a heading that file has (GitHub's anchors): moving a section
between files cannot leave a dead link behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its text lower-cased, markup and punctuation but
    hyphens dropped, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text.replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in FENCE.sub("", path.read_text()).splitlines():
        heading = re.match(r"#{1,6} (.+)", line)
        if heading:
            anchor = github_anchor(heading.group(1))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def test_the_anchors_are_githubs() -> None:
    assert github_anchor("WS-Management (DSP0226)") == "ws-management-dsp0226"
    assert github_anchor("Set-up: two commands") == "set-up-two-commands"
    assert github_anchor("Signed GetKey (`--signed`)") == "signed-getkey---signed"


def dead_links(doc: Path) -> list[str]:
    dead = []
    for target in LINK.findall(FENCE.sub("", doc.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            dead.append(f"{target}: no such file")
        elif fragment and (dest.suffix != ".md" or fragment not in anchors(dest)):
            dead.append(f"{target}: no such heading in {dest.name}")
    return dead


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_relative_link_resolves(doc: Path) -> None:
    assert dead_links(doc) == []


def test_a_dead_link_is_found(tmp_path: Path) -> None:
    """The check itself can fail: a link to a missing heading and to a missing file."""
    doc = tmp_path / "a.md"
    doc.write_text("# Title\n\n## Real one\n\n[x](#real-one) [y](#gone) [z](b.md)"
                   " [w](a.md#title) [v](https://example.com/#nowhere)\n"
                   "```\n# not a heading\n[u](#not-a-heading)\n```\n")
    assert dead_links(doc) == ["#gone: no such heading in a.md", "b.md: no such file"]
