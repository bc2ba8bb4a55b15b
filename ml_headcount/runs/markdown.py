"""Text from users in report.md (category labels, file names, keywords, organisation and annotator names), shown as
typed: the Prefect UI renders report.md as Markdown, raw HTML included, so an organisation named `<img src=...
onerror=...>` made the browser fetch that URL, and a `|` in a name shifted a table's columns."""

from __future__ import annotations

# Markdown's inline syntax a name could carry, backslash-escaped: ` (code span), | (table cell), [ ] (link, image),
# * _ ~ (emphasis), and \ itself (so `\|` in a name stays a backslash and a pipe); < > & (raw HTML, entities) as
# entities, which every renderer reads; a line break would end the table row or the paragraph
_ESCAPES = str.maketrans(
    {**{c: "\\" + c for c in "\\`|[]*_~"}, "<": "&lt;", ">": "&gt;", "&": "&amp;", "\r": " ", "\n": " "}
)


def markdown_text(value) -> str:
    """`value` as Markdown that renders as its text: no HTML, link, code span, emphasis or table cell boundary."""
    return str(value).translate(_ESCAPES)
