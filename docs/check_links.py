"""Check every internal link of the built HTML site, offline: each relative ``href``/``src`` must name a file of
the build, and each ``#anchor`` an ``id`` in the page it points to. External links (http, https, mailto) are
not followed: the check runs without a network.

Usage: ``python docs/check_links.py docs/_build/html`` (``bash dev.sh docs`` runs it after the build). Exits 1,
listing every broken link, if there is one.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            elif (name == "href" and tag in ("a", "link")) or (name == "src" and tag in ("img", "script")):
                self.links.append(value)


def broken_links(root: Path) -> list[str]:
    pages: dict[Path, _Page] = {}
    for path in sorted(root.rglob("*.html")):
        if path.relative_to(root).parts[0] == "_static":  # the theme's templates, not pages
            continue
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        pages[path.resolve()] = page
    broken = []
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(root.resolve())}: {link}"
            if not target.exists():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in pages[target].ids:
                broken.append(f"{where} (no anchor #{parts.fragment})")
    return broken


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python docs/check_links.py BUILT_HTML_FOLDER", file=sys.stderr)
        return 2
    root = Path(argv[0])
    broken = broken_links(root)
    n_pages = sum(1 for p in root.rglob("*.html") if p.relative_to(root).parts[0] != "_static")
    for line in broken:
        print(f"broken link: {line}", file=sys.stderr)
    print(f"check_links: {n_pages} pages, {len(broken)} broken internal links")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
