"""A report's content, built once, and its two renderings: report.md and report.html.

The two files were written by separate code and drifted (the page lacked the queries, the classifier, the repairs
and flags; its tables had other column names). A run's and an estimate's report are now a `Document`: a title, a lead
and sections of paragraphs, bullets, tables, images and an artifact list. `markdown` and `html` render every part of
it; neither adds content of its own.

Text from users (categories, organisations, annotators, file names) is escaped by each renderer (`markdown_text`,
`html.escape`), never by the builder.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
from dataclasses import dataclass, field

from ml_headcount.runs.markdown import markdown_text as md


@dataclass(frozen=True)
class Code:
    """Text shown as code: a file name, a setting, a query."""

    text: str


@dataclass(frozen=True)
class Strong:
    """Text shown in bold: the headline figure."""

    text: str


Span = str | Code | Strong


@dataclass(frozen=True)
class Paragraph:
    """Text made of plain, code and bold spans."""

    spans: tuple[Span, ...]

    def __init__(self, *spans: Span):
        object.__setattr__(self, "spans", spans)


@dataclass(frozen=True)
class Bullets:
    """A bulleted list, one paragraph an item."""

    items: tuple[Paragraph, ...]


@dataclass(frozen=True)
class Table:
    """Rows of cells under one set of column names; a missing value (None, NaN) shows blank."""

    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    title: str | None = None  # a sub-heading over the table (a category's keywords)


@dataclass(frozen=True)
class Image:
    """A plot: embedded in the page; Markdown names it and its `file` beside the report (a rendered report.md then
    fetches nothing)."""

    png: bytes
    alt: str
    file: str | None = None


@dataclass(frozen=True)
class Artifacts:
    """The files beside the report and what each holds."""

    files: dict[str, str]


Part = Paragraph | Bullets | Table | Image | Artifacts


@dataclass
class Section:
    """A titled part of the report (`##` in Markdown, a linkable `<section id=anchor>` in HTML)."""

    title: str
    anchor: str
    parts: list[Part] = field(default_factory=list)


@dataclass
class Document:
    """A whole report: its title, a lead under it, its sections."""

    title: str
    lead: list[Part]
    sections: list[Section]

    def images(self) -> list[Image]:
        """Every plot of the report, in order."""
        return [part for section in self.sections for part in section.parts if isinstance(part, Image)]


def table_of(records: list[dict]) -> Table:
    """A table of records that share their keys (the first record's, in order)."""
    columns = tuple(records[0]) if records else ()
    return Table(columns, tuple(tuple(record.get(c) for c in columns) for record in records))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --- Markdown -------------------------------------------------------------------------------------------------------


def markdown(document: Document) -> str:
    """report.md: every section of `document`, user text escaped (`markdown_text`)."""
    lines = [f"# {md(document.title)}", ""]
    for part in document.lead:
        lines += _markdown_part(part)
    for section in document.sections:
        lines += [f"## {md(section.title)}", ""]
        for part in section.parts:
            lines += _markdown_part(part)
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_span(span: Span) -> str:
    if isinstance(span, Code):
        return f"`{span.text}`" if "`" not in span.text and "\n" not in span.text else md(span.text)
    if isinstance(span, Strong):
        return f"**{md(span.text)}**"
    return md(span)


def _markdown_cell(value) -> str:
    return "" if _missing(value) else md(value)


def _markdown_part(part: Part) -> list[str]:
    if isinstance(part, Paragraph):
        return ["".join(map(_markdown_span, part.spans)), ""]
    if isinstance(part, Bullets):
        return ["- " + "".join(map(_markdown_span, item.spans)) for item in part.items] + [""]
    if isinstance(part, Table):
        lines = [f"### {md(part.title)}", ""] if part.title else []
        lines += ["| " + " | ".join(map(md, part.columns)) + " |", "|" + "---|" * len(part.columns)]
        lines += ["| " + " | ".join(map(_markdown_cell, row)) + " |" for row in part.rows]
        return lines + [""]
    if isinstance(part, Image):
        beside = f": `{part.file}`, and" if part.file else ":"
        return [f"Plot of the {md(part.alt)}{beside} in report.html.", ""]  # no image: report.md names no URL
    return [f"- `{name}`: {md(what)}" for name, what in part.files.items()] + [""]


# --- HTML -----------------------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f5f8; } td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td { overflow-wrap: break-word; max-width: 28rem; }
img { max-width: 100%; height: auto; } code { font-size: 0.85rem; overflow-wrap: anywhere; }
"""


def e(value) -> str:
    """Text as HTML."""
    return html.escape("" if value is None else str(value))


def html_page(document: Document) -> str:
    """report.html: every section of `document` on one self-contained page (plots as data URIs, no script)."""
    sections = "".join(
        f'<section id="{section.anchor}"><h2>{e(section.title)}</h2>{"".join(map(_html_part, section.parts))}</section>'
        for section in document.sections
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(document.title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<style>{STYLE}</style></head><body><h1>{e(document.title)}</h1>"
        f"{''.join(map(_html_part, document.lead))}{sections}</body></html>\n"
    )


def _html_span(span: Span) -> str:
    if isinstance(span, Code):
        return f"<code>{e(span.text)}</code>"
    if isinstance(span, Strong):
        return f"<strong>{e(span.text)}</strong>"
    return e(span)


def _html_cell(value) -> str:
    if _missing(value):
        return "<td></td>"
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return f'<td class="number">{e(value)}</td>'
    return f"<td>{e(value)}</td>"


def _html_part(part: Part) -> str:
    if isinstance(part, Paragraph):
        return f"<p>{''.join(map(_html_span, part.spans))}</p>"
    if isinstance(part, Bullets):
        return "<ul>" + "".join(f"<li>{''.join(map(_html_span, item.spans))}</li>" for item in part.items) + "</ul>"
    if isinstance(part, Table):
        title = f"<h3>{e(part.title)}</h3>" if part.title else ""
        head = "".join(f"<th>{e(c)}</th>" for c in part.columns)
        body = "".join(f"<tr>{''.join(map(_html_cell, row))}</tr>" for row in part.rows)
        return f'{title}<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    if isinstance(part, Image):
        return f'<img alt="{e(part.alt)}" src="data:image/png;base64,{base64.b64encode(part.png).decode()}">'
    items = "".join(f'<li><a href="{e(name)}">{e(name)}</a>: {e(what)}</li>' for name, what in part.files.items())
    return f"<ul>{items}</ul>"
