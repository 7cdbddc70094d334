"""A document as a list of blocks, written out as Markdown and as a standalone HTML page.

The report needs headings with anchors, paragraphs, bullet lists, tables, images and *evidence* blocks (a
section's figures beside the verdict cards of its claims), nothing more, so rather than parse Markdown (or
depend on a package that does) it builds the document once as blocks and renders each block twice. Inline
markup is limited to ``**bold**``, ``*italic*``, ```code```, ``[text](link)`` and ``[[verdict]]`` (a coloured
badge in HTML, bold in Markdown).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Document", "Card"]

_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]\[]+)\]\(([^)\s]+)\)")
_BADGE = re.compile(r"\[\[([a-z ]+)\]\]")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:84em;margin:1.5em auto;padding:0 1.2em;
line-height:1.5;color:#1d1d1f}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:2.2em;border-bottom:2px solid #e3e3e3;padding-bottom:.2em}
h3{margin-top:1.6em}
table{border-collapse:collapse;margin:.8em 0 1.2em;font-size:88%}
td,th{border:1px solid #d6d6d6;padding:.28em .55em;text-align:left;vertical-align:top}
th{background:#f2f2f2}caption{caption-side:bottom;text-align:left;font-size:90%;color:#555;padding-top:.3em}
tbody tr:nth-child(even){background:#fafafa}
img{max-width:100%;height:auto;border:1px solid #eee}
code{background:#f2f2f2;padding:0 .25em;border-radius:3px;font-size:92%}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:85%}
a{color:#0b5cad}
.badge{display:inline-block;padding:.05em .55em;border-radius:1em;font-size:85%;font-weight:600;white-space:nowrap}
.v-supported{background:#d8f0dc;color:#17612a}.v-not-supported{background:#f8d9d9;color:#8a1c1c}
.v-inconclusive{background:#fbecc6;color:#7a5300}.v-mixed{background:#eadcf5;color:#5b2a86}
.v-unstable{background:#e4e4e4;color:#333}
.summary{background:#f5f8fc;border:1px solid #d8e3f0;border-radius:6px;padding:.6em 1.2em;margin:1em 0}
.evidence{display:grid;grid-template-columns:minmax(0,1fr);gap:1.2em;align-items:start;margin:1em 0}
.evidence .cards{display:grid;gap:1em;grid-template-columns:repeat(auto-fill,minmax(30em,1fr))}
.evidence .figures a{display:block;cursor:zoom-in}
td,th{overflow-wrap:break-word}table{max-width:100%}
.evidence .figures p{margin:0 0 .8em}
@media (max-width:60em){.evidence{grid-template-columns:minmax(0,1fr)}}
.card{border:1px solid #ddd;border-left:6px solid #999;border-radius:4px;padding:.5em .8em;background:#fff}
.card.c-supported{border-left-color:#2e9a48}.card.c-not-supported{border-left-color:#c0392b}
.card.c-inconclusive{border-left-color:#d99a00}.card.c-mixed{border-left-color:#7d3cb5}
.card.c-unstable{border-left-color:#777}
.card h4{margin:.1em 0 .4em;font-size:1em}.card table{font-size:82%;margin:.4em 0}.card p{margin:.4em 0;font-size:92%}
.card .rule{color:#444;font-size:86%}
"""


def _figure_html(path: str, alt: str) -> str:
    """An image at the page's width that opens at full size when clicked."""
    p, a = html.escape(path), html.escape(alt)
    return f'<a href="{p}" target="_blank" title="open full size"><img src="{p}" alt="{a}"></a>'


def _badge_html(verdict: str) -> str:
    return f'<span class="badge v-{verdict.replace(" ", "-")}">{verdict}</span>'


def _inline_html(text: str) -> str:
    out = html.escape(str(text), quote=False)
    codes: list[str] = []

    def keep(m: re.Match) -> str:  # code spans are not parsed further
        codes.append(f"<code>{m.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = _CODE.sub(keep, out)
    out = _BADGE.sub(lambda m: _badge_html(m.group(1)), out)
    out = _LINK.sub(lambda m: f'<a href="{m.group(2).replace(chr(34), "&quot;")}">{m.group(1)}</a>', out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _ITALIC.sub(r"<em>\1</em>", out)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], out)


def _inline_md(text: str) -> str:
    return _BADGE.sub(r"**\1**", str(text))


def _cell_md(text: Any) -> str:
    return _inline_md(str(text)).replace("|", "\\|").replace("\n", "<br>")


@dataclass
class Card:
    """A claim's verdict as the report shows it: the claim, its verdict, one row per part (what was measured,
    the estimate with its interval, the threshold, the part's verdict), the evidence and the rule."""

    anchor: str
    title: str
    verdict: str
    parts: list[list[str]]
    evidence: str
    rule: str
    notes: list[str] = field(default_factory=list)


def _table_html(head: Sequence[Any], rows: Sequence[Sequence[Any]], caption: str | None = None) -> str:
    cap = f"<caption>{_inline_html(caption)}</caption>" if caption else ""
    # a line break inside a cell (one line per part of a claim) stays a line break
    body = "".join("<tr>" + "".join(f"<td>{_inline_html(c).replace(chr(10), '<br>')}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f"<table>{cap}<thead><tr>" + "".join(f"<th>{_inline_html(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{body}</tbody></table>")


def _table_md(head: Sequence[Any], rows: Sequence[Sequence[Any]], caption: str | None = None) -> list[str]:
    out = ["| " + " | ".join(map(_cell_md, head)) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(map(_cell_md, row)) + " |" for row in rows]
    if caption:
        out += ["", f"*{_inline_md(caption)}*"]
    return out + [""]


_PART_HEAD = ("part", "measured [95% interval]", "threshold", "verdict")


@dataclass
class Document:
    """Blocks of a report; :meth:`markdown` and :meth:`html` render them."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2, anchor: str | None = None) -> None:
        self.blocks.append(("heading", (level, text, anchor)))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def summary(self, text: str, items: Sequence[str]) -> None:
        """A highlighted box: a lead sentence and bullet points."""
        self.blocks.append(("summary", (text, list(items))))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, head: Sequence[Any], rows: Sequence[Sequence[Any]], caption: str | None = None) -> None:
        self.blocks.append(("table", (list(head), [list(r) for r in rows], caption)))

    def image(self, path: str, alt: str) -> None:
        self.blocks.append(("image", (path, alt)))

    def evidence(self, figures: Sequence[tuple[str, str]], cards: Sequence[Card]) -> None:
        """Figures (path, alt text) beside the verdict cards they support."""
        self.blocks.append(("evidence", (list(figures), list(cards))))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))

    # -- Markdown ----------------------------------------------------------------------------------------------
    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                level, text, anchor = value
                if anchor:
                    out.append(f'<a id="{anchor}"></a>')
                out += ["#" * level + " " + _inline_md(text), ""]
            elif kind == "paragraph":
                out += [_inline_md(value), ""]
            elif kind == "summary":
                text, items = value
                out += [f"> {_inline_md(text)}", ">"] + [f"> - {_inline_md(i)}" for i in items] + [""]
            elif kind == "bullets":
                out += [f"- {_inline_md(item)}" for item in value] + [""]
            elif kind == "table":
                out += _table_md(*value)
            elif kind == "image":
                path, alt = value
                out += [f"![{alt}]({path})", ""]
            elif kind == "evidence":
                figures, cards = value
                out += [line for path, alt in figures for line in (f"![{alt}]({path})", "")]
                for c in cards:
                    out += [f'<a id="{c.anchor}"></a>', "", f"**{_inline_md(c.title)}** — **{c.verdict}**", ""]
                    out += _table_md(_PART_HEAD, c.parts)
                    out += [_inline_md(c.evidence), ""] + [f"*{_inline_md(n)}*" for n in c.notes]
                    out += [f"*Rule:* {_inline_md(c.rule)}", ""]
            elif kind == "pre":
                out += ["```", value, "```", ""]
        return "\n".join(out)

    # -- HTML --------------------------------------------------------------------------------------------------
    def html(self) -> str:
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
               '<meta name="viewport" content="width=device-width, initial-scale=1">',
               f"<title>{html.escape(self.title)}</title>", f"<style>{_CSS}</style></head><body>",
               f"<h1>{_inline_html(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                level, text, anchor = value
                ident = f' id="{html.escape(anchor)}"' if anchor else ""
                out.append(f"<h{level}{ident}>{_inline_html(text)}</h{level}>")
            elif kind == "paragraph":
                out.append(f"<p>{_inline_html(value)}</p>")
            elif kind == "summary":
                text, items = value
                out.append(f'<div class="summary"><p>{_inline_html(text)}</p><ul>'
                           + "".join(f"<li>{_inline_html(i)}</li>" for i in items) + "</ul></div>")
            elif kind == "bullets":
                out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in value) + "</ul>")
            elif kind == "table":
                out.append(_table_html(*value))
            elif kind == "image":
                path, alt = value
                out.append(f'<p>{_figure_html(path, alt)}</p>')
            elif kind == "evidence":
                figures, cards = value
                # multi-panel figures at full width (each a link to the full-size image), the verdicts under them
                figs = "".join(f"<p>{_figure_html(p, a)}</p>" for p, a in figures)
                out.append(f'<div class="evidence"><div class="figures">{figs}</div><div class="cards">'
                           + "".join(self._card_html(c) for c in cards) + "</div></div>")
            elif kind == "pre":
                out.append(f"<pre>{html.escape(value)}</pre>")
        out.append("</body></html>")
        return "\n".join(out)

    @staticmethod
    def _card_html(c: Card) -> str:
        notes = "".join(f"<p><em>{_inline_html(n)}</em></p>" for n in c.notes)
        return (f'<div class="card c-{c.verdict.replace(" ", "-")}" id="{html.escape(c.anchor)}">'
                f"<h4>{_inline_html(c.title)} {_badge_html(c.verdict)}</h4>{_table_html(_PART_HEAD, c.parts)}"
                f"<p>{_inline_html(c.evidence)}</p>{notes}<p class=\"rule\"><strong>Rule:</strong> "
                f"{_inline_html(c.rule)}</p></div>")
