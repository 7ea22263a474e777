"""Tables sized from their text: widths, wrapping, escaping (the browser test in test_page.py
checks the drawn result)."""

from __future__ import annotations

import html
import math

import pandas as pd
import pytest

from journeymine.dashboard.tables import (
    CELL_PX,
    ROOM_PX,
    WIDEST_COLUMN_PX,
    fit_columns,
    min_width,
    table,
    text_px,
    wrap_px,
)
from tests.dashboard.conftest import IMG, SCRIPT


def test_text_is_measured_with_wide_glyph_widths() -> None:
    # 7 digits at 0.64 em and 2 commas at 0.34 em, 13 px a em (Chromium draws it in 66 px).
    assert text_px("1,861,769") == pytest.approx((7 * 0.64 + 2 * 0.34) * 13)
    assert text_px("Mm") == pytest.approx(2 * 13) and text_px("Mm", bold=True) == pytest.approx(
        2 * 13 * 1.1
    )


@pytest.mark.parametrize(
    ("text", "room"),
    [
        ("conversions to demo_requested per month", 90),
        ("feedback.survey_answered_with_a_very_long_name", 60),
        (f"Answer {SCRIPT} within 1d {IMG}", 70),
        ("x" * 40, 50),
    ],
)
def test_wrap_keeps_every_character_and_fits_the_room(text: str, room: float) -> None:
    lines = wrap_px(text, room)
    assert "".join(lines) == text and len(lines) > 1
    assert all(text_px(line.rstrip()) <= room for line in lines)


def test_wrap_breaks_at_spaces_before_punctuation() -> None:
    assert wrap_px("did web.signed_up", text_px("web.signed_up")) == ["did ", "web.signed_up"]
    assert wrap_px("web.signed_up", text_px("web.signed")) == ["web.", "signed_up"]


def test_spare_room_goes_to_the_columns_with_the_most_text() -> None:
    # Floors 50 + 100 leave 100 of room 250; the first column wants nothing more.
    assert fit_columns([50, 100], [50, 300], 250, [1, 1]) == [50, 200]
    # Both want more: 100 spare poured 1:3 by their text.
    assert fit_columns([50, 50], [100, 300], 200, [1, 3]) == [75, 125]
    # 50 each, but the first takes only 10 more; its other 40 go to the second.
    assert fit_columns([50, 50], [60, 300], 200, [1, 1]) == [60, 140]
    assert fit_columns([50, 100], [80, 300], 1000, [1, 1]) == [80, 300]  # no more than wanted
    assert fit_columns([50, 100], [80, 300], 120, [1, 1]) == [50, 100]  # never below a floor


def test_no_number_or_header_is_narrower_than_its_column() -> None:
    frame = pd.DataFrame(
        {
            "title": ["Answer demo_call within 1d: about 603123 more reaching called " * 3],
            "people": [3_104_295],
            "gain_high": [603_273.5],
        }
    )
    fig = table(frame, "", {"people": ",", "gain_high": ",.1f"})
    widths = fig.data[0].columnwidth
    assert widths[0] == pytest.approx(WIDEST_COLUMN_PX + CELL_PX)  # a long title wraps
    assert widths[1] >= text_px("3,104,295") + CELL_PX
    assert widths[2] >= text_px("gain_high", bold=True) + CELL_PX
    assert fig.data[0].header.values[2] == "<b>gain_high</b>"
    title = fig.data[0].cells.values[0][0]
    assert title.count("<br>") >= 2 and title.replace("<br>", "") == frame.title[0]
    # The number columns are exactly as wide as their text, so the table (and its 10 px
    # margins) must not get any narrower.
    assert sum(widths) < ROOM_PX and min_width(fig) == math.ceil(sum(widths) + 20)
    header, row = 32, 32 + 17 * title.count("<br>")  # plotly.js: 31.5 px + 16.9 a line
    assert fig.layout.height == pytest.approx(10 + header + row + 10, abs=1)


def test_cells_are_escaped_after_wrapping_so_no_entity_is_split() -> None:
    frame = pd.DataFrame({"name": [f"{SCRIPT} {IMG} eve.smith@evil.io" * 2]})
    fig = table(frame, "", {})
    cell = fig.data[0].cells.values[0][0]
    assert "<script" not in cell and "<img" not in cell and "evil.io" not in cell
    lines = cell.split("<br>")
    assert len(lines) > 1 and all(html.unescape(x).count("&") == 0 for x in lines)
    assert "".join(html.unescape(x) for x in lines) == html.unescape(
        frame.name[0].replace("eve.smith@evil.io", "[email hidden]")
    )


def test_a_column_as_wide_as_its_words_keeps_them_whole() -> None:
    frame = pd.DataFrame({"period": [1], "at_risk": [25], "rate": [0.8]})
    fig = table(frame, "", {"rate": ".1%"})
    assert list(fig.data[0].header.values) == ["<b>period</b>", "<b>at_risk</b>", "<b>rate</b>"]
    assert [list(c) for c in fig.data[0].cells.values] == [["1"], ["25"], ["80.0%"]]


def test_a_small_table_needs_little_width() -> None:
    fig = table(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), "", {})
    # Each column: its bold one-letter header (0.64 em x 13 px x 1.1) and the cell's 22 px.
    column = 0.64 * 13 * 1.1 + 22
    assert list(fig.data[0].columnwidth) == pytest.approx([column, column])
    assert min_width(fig) == math.ceil(2 * column + 20)


def test_numbers_that_round_to_zero_show_no_minus_sign() -> None:
    frame = pd.DataFrame({"people": [1, 26], "gain": [-0.04, -0.2], "share": [-0.0004, 0.5]})
    fig = table(frame, "", {"people": ",", "gain": ",.1f", "share": ".1%"})
    people, gain, share = fig.data[0].cells.values
    assert (list(people), list(gain), list(share)) == (
        ["1", "26"],
        ["0.0", "-0.2"],
        ["0.0%", "50.0%"],
    )
