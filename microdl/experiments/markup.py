"""A document as a list of blocks, written out as Markdown and as a standalone HTML page.

The report needs headings, paragraphs, bullet lists, tables, images and preformatted text, nothing more, so
rather than parse Markdown (or depend on a package that does) it builds the document once as blocks and
renders each block twice. Inline markup is limited to ``**bold**``, ``*italic*`` and ```code```.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Document"]

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"\*([^*]+)\*")
_CODE = re.compile(r"`([^`]+)`")


def _inline_html(text: str) -> str:
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    return _ITALIC.sub(r"<em>\1</em>", out)


def _cell_md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


@dataclass
class Document:
    """Blocks of a report; :meth:`markdown` and :meth:`html` render them."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, head: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.blocks.append(("table", (list(head), [list(r) for r in rows])))

    def image(self, path: str, alt: str) -> None:
        self.blocks.append(("image", (path, alt)))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                out += ["#" * level + " " + text, ""]
            elif kind == "paragraph":
                out += [value, ""]
            elif kind == "bullets":
                out += [f"- {item}" for item in value] + [""]
            elif kind == "table":
                head, rows = value
                out.append("| " + " | ".join(map(_cell_md, head)) + " |")
                out.append("|" + "|".join("---" for _ in head) + "|")
                out += ["| " + " | ".join(map(_cell_md, row)) + " |" for row in rows]
                out.append("")
            elif kind == "image":
                path, alt = value
                out += [f"![{alt}]({path})", ""]
            elif kind == "pre":
                out += ["```", value, "```", ""]
        return "\n".join(out)

    def html(self) -> str:
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
               f"<title>{html.escape(self.title)}</title>",
               "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;line-height:1.45}"
               "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #ccc;"
               "padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}"
               "img{max-width:100%}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:85%}"
               "code{background:#f3f3f3;padding:0 .2em}</style></head><body>",
               f"<h1>{html.escape(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                out.append(f"<h{level}>{_inline_html(text)}</h{level}>")
            elif kind == "paragraph":
                out.append(f"<p>{_inline_html(value)}</p>")
            elif kind == "bullets":
                out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in value) + "</ul>")
            elif kind == "table":
                head, rows = value
                out.append("<table><thead><tr>" + "".join(f"<th>{_inline_html(str(h))}</th>" for h in head)
                           + "</tr></thead><tbody>")
                out += ["<tr>" + "".join(f"<td>{_inline_html(str(c))}</td>" for c in row) + "</tr>" for row in rows]
                out.append("</tbody></table>")
            elif kind == "image":
                path, alt = value
                out.append(f'<p><img src="{html.escape(path)}" alt="{html.escape(alt)}"></p>')
            elif kind == "pre":
                out.append(f"<pre>{html.escape(value)}</pre>")
        out.append("</body></html>")
        return "\n".join(out)
