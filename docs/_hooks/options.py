"""MkDocs hook: the configuration page's table of options, made from the code.

Every option of `Client` (and so of `init()`, Django's `BENTO_TRACK` and
Flask's `app.config["BENTO_TRACK"]`) is declared once, in
`bento_track.options.OPTIONS`: its default, its environment variable, its
range and what it means. The configuration page holds only `MARKER`; the
table is written from that declaration at build time, so it cannot drift
from the code (tests/test_options.py keeps the signatures equal to it;
tests/test_docs.py checks the built page lists every option once).
"""

from __future__ import annotations

from typing import Any

from bento_track.options import OPTIONS, Option

#: where the configuration page wants the table
MARKER = "<!-- options: generated from bento_track.options -->"

_MIB = 1_048_576


def _number(value: float, *, size: bool = False) -> str:
    """`3,600`, `0.001`; with `size`, a power-of-two size: `1 KiB`, `16 TiB`."""
    if size:
        for unit, scale in (("TiB", 2**40), ("MiB", _MIB), ("KiB", 1024)):
            if value >= scale and value % scale == 0:
                return f"{value / scale:g} {unit}"
    return f"{value:,g}" if value < 1e6 else f"{value:,.0f}"


def default_text(option: Option) -> str:
    """The default as the table shows it: the Python value, and its size for
    a number of bytes."""
    text = f"`{option.default!r}`"
    if option.name.endswith("_bytes") and isinstance(option.default, int):
        text += f" ({_number(option.default, size=True)})"
    return text


def range_text(option: Option) -> str:
    """`1..1,000`, `0.01..3,600 seconds`, or "" for an option with no range."""
    if option.low is None or option.high is None:
        return ""
    if option.name.endswith("_bytes"):
        low, high = (_number(v, size=True) for v in (option.low, option.high))
        return f"{low}..{high}"
    unit = f" {option.unit}" if option.unit else ""
    return f"{_number(option.low)}..{_number(option.high)}{unit}"


def _cell(text: str) -> str:
    # A `|` ends a table cell, even inside a code span.
    return text.replace("|", "\\|")


def options_table() -> str:
    """The Markdown table of every option, in declaration order."""
    rows = [
        "| option | environment variable | default | allowed | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for option in OPTIONS.values():
        variable = f"`{option.env}`" if option.env else ""
        rows.append(
            f"| `{option.name}` | {variable} | {_cell(default_text(option))} "
            f"| {range_text(option)} | {_cell(option.doc)} |"
        )
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs event: put the table where a page holds `MARKER`."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, options_table())
