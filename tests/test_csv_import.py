"""`read_rows`: the CSV reader reads the same on every supported Python.

Python 3.10's csv module refuses a whole file for one NUL character, where
3.11 and later read it; the importer makes both skip just that row (CI runs
these on each version; `tests/test_cli.py` has the command end to end)."""

from __future__ import annotations

import io

from bento_track.cli.csv_import import ImportSummary, read_rows


def rows_of(text: str) -> tuple[list[dict[str, str]], ImportSummary]:
    summary = ImportSummary()
    rows = list(read_rows(io.StringIO(text, newline=""), summary))
    return rows, summary


def test_a_nul_skips_its_row_by_line_and_the_rest_is_read() -> None:
    rows, summary = rows_of(
        "email,first_name,city\n"
        "a@example.com,Ann,Oslo\n"
        "b@example.com,B\x00b,Rome\n"
        'c@example.com,"Ca\x00rl",Bonn\n'
        "d\x00@example.com,Dee,Lima\n"
        "e@example.com,Eve,Kyiv\n"
    )

    assert [r["email"] for r in rows] == ["a@example.com", "e@example.com"]
    assert summary.rows == 5
    assert [line for line, _ in summary.bad_rows] == [3, 4, 5]
    assert "row.first_name: contains a NUL character" in summary.bad_rows[0][1]
    assert "row.first_name" in summary.bad_rows[1][1]
    assert "email" in summary.bad_rows[2][1]


def test_a_nul_in_a_quoted_multiline_cell_keeps_line_numbers() -> None:
    rows, summary = rows_of(
        'email,note\na@example.com,"two\nli\x00nes"\nb@example.com,ok\n'
    )

    assert [r["email"] for r in rows] == ["b@example.com"]
    assert summary.bad_rows[0][0] == 3  # the line the row ends on, as before
    assert "row.note" in summary.bad_rows[0][1]


def test_the_escape_character_itself_comes_back_as_written() -> None:
    """U+FFFF is the importer's escape; a cell that holds it (with or without
    a NUL elsewhere in the file) is read exactly as written."""
    odd = "x\uffff0y\uffffez\uffff"
    rows, summary = rows_of(f"email,note\na@example.com,{odd}\nb@example.com,b\x00\n")

    assert rows == [{"email": "a@example.com", "note": odd}]
    assert [line for line, _ in summary.bad_rows] == [3]


def test_a_nul_in_a_header_column_refuses_the_rows_that_fill_it() -> None:
    rows, summary = rows_of("email,no\x00te\na@example.com,\nb@example.com,x\n")

    assert rows == [{"email": "a@example.com"}]
    assert [line for line, _ in summary.bad_rows] == [3]
