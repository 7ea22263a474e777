"""Tables every column of which can be read in a card on a 1024 px wide window.

plotly.js draws a table in SVG: each column gets a share of the figure's width in proportion to
``columnwidth``, text is wrapped at spaces only, and whatever is still wider than its column is
cut off at the column's edge, with no scroll. So the widths are chosen here, in pixels, from
the text itself:

* a column is never narrower than its widest word: a number whole, a name (``demo_requested``)
  down to its widest part between punctuation marks, anything up to :data:`LONGEST_WORD_PX`
  (a longer run is broken at ``. _ : / = -`` or anywhere);
* the room a card leaves a table (:data:`ROOM_PX`) is then shared by the columns whose text
  would like more (long titles, names on one line), in proportion to how much text each
  holds, so the room goes where most lines are saved;
* every header and cell is wrapped here into lines that fit its column (``<br>``), so row
  heights are known and the figure is exactly as tall as its rows;
* the narrowest width at which every line still fits goes into ``layout.meta``
  (:func:`min_width`): the page never draws the table narrower and gives it a horizontal
  scroll inside its card instead, the last resort on a narrow window.

Text is measured with the advance widths of DejaVu Sans, the widest of the usual ``system-ui``
fonts, so a column sized here also holds its text in Segoe UI or San Francisco.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from journeymine.dashboard.style import style
from journeymine.privacy import label, scrub

FONT_PX = 13
# What a cell takes beside its text: plotly.js's cellPad (8 px) on each side, and the width of
# a space it counts after the last word of a line when it decides whether to wrap one.
CELL_PX = 2 * 8 + 6
# A cell of n lines is 16.9 px (plotly.js's 1.3 em) a line after its first, which with the
# padding above and below takes 31.5 px (measured in Chromium: 32, 65, 82 and 99 px for 1, 3,
# 4 and 5 lines).
LINE_PX = 16.9
FIRST_LINE_PX = 31.5
MARGIN_PX = 10  # the figure's left and right margins around the table
# What a card leaves a table on a 1024 px window (961 px card, 44 px padding, the margins),
# less a little for scrollbars wider than Chromium's.
ROOM_PX = 880
SHORT_WORD = 12  # characters: a name this short is never broken (``gain_high``, ``converted``)
LONGEST_WORD_PX = 210  # a run without a space wider than this is broken, not given a column
WIDEST_COLUMN_PX = 600  # a long title wraps rather than take the whole card
BOLD = 1.1  # DejaVu Sans Bold is about a tenth wider than Book

# Advance widths in em of DejaVu Sans Book, by groups of similar glyphs, rounded up; other
# lower-case letters, digits and ``_`` are 0.64 em, other capitals 0.78, anything else 1.
_EM = {
    **dict.fromkeys(" .,:;'|!ijlI", 0.34),
    **dict.fromkeys('ftr()[]{}-/\\"', 0.42),
    **dict.fromkeys("=+<>~*^", 0.84),
    **dict.fromkeys("mwMW%@&", 1.0),
}
# Where a long word may be broken: after a space, then after punctuation, then anywhere.
_BREAKS = (r"(?<= )", r"(?<=[._:/=-])", r"(?<=.)")
_LETTER = re.compile(r"[^\W\d_]")


def text_px(text: str, bold: bool = False) -> float:
    """The width of ``text`` in pixels at 13 px, measured as DejaVu Sans (see the module)."""
    em = 0.0
    for char in text:
        if char in _EM:
            em += _EM[char]
        elif char.isascii() and (char.islower() or char.isdigit() or char == "_"):
            em += 0.64
        elif char.isascii() and char.isupper():
            em += 0.78
        else:
            em += 1.0
    return em * FONT_PX * (BOLD if bold else 1.0)


def wrap_px(text: str, room: float, bold: bool = False, level: int = 0) -> list[str]:
    """``text`` as lines no wider than ``room`` pixels: broken at spaces, a word too wide
    for a line at punctuation, a piece still too wide anywhere. Every character is kept (a
    space or mark ends its line), so the lines joined give ``text`` back."""
    room += 1e-6  # a column sized for a word holds it, whatever the rounding of the sums
    lines, line = [], ""
    for piece in (p for p in re.split(_BREAKS[level], text) if p):
        if line and text_px((line + piece).rstrip(), bold) > room:
            lines.append(line)
            line = ""
        if not line and text_px(piece.rstrip(), bold) > room and level + 1 < len(_BREAKS):
            *full, line = wrap_px(piece, room, bold, level + 1)
            lines.extend(full)
        else:
            line += piece
    lines.append(line)
    return lines


def _breakable(word: str) -> bool:
    """A long name (letters, over a dozen characters): it may break after ``_`` or ``.``;
    a short one (``gain_low``) or a number stays whole."""
    return len(word) > SHORT_WORD and _LETTER.search(word) is not None


def _words_px(text: str, bold: bool) -> float:
    """The widest piece a column must hold unbroken: a word, or for a name (a word with a
    letter, like ``demo_requested``) its widest part between punctuation marks, since a
    long name may break after ``_`` on a crowded table; a number is never broken."""
    pieces = [
        part
        for word in text.split(" ")
        for part in (re.split(_BREAKS[1], word) if _breakable(word) else [word])
    ]
    return max((text_px(p, bold) for p in pieces), default=0.0)


def _column_px(header: str, texts: Sequence[str]) -> tuple[float, float]:
    """The narrowest a column may be (its widest word, capped) and the widest it would like
    to be (its longest text on one line, capped), both with the cell padding."""
    floor = max([_words_px(header, True)] + [_words_px(t, False) for t in texts])
    natural = max([text_px(header, True)] + [text_px(t) for t in texts])
    floor = min(floor, LONGEST_WORD_PX)
    natural = max(floor, min(natural, WIDEST_COLUMN_PX))
    return floor + CELL_PX, natural + CELL_PX


def fit_columns(
    floors: Sequence[float], naturals: Sequence[float], room: float, text: Sequence[float]
) -> list[float]:
    """Column widths: each its floor, then what is left of ``room`` poured into the columns
    that would like more, in proportion to how much ``text`` (pixels on one line) each holds,
    none beyond what it would like (its share then goes to the others). The text weighs, not
    the want: eight long titles need the room more than one long header over short numbers."""
    widths = list(floors)
    spare = room - sum(widths)
    open_ = [i for i, (f, n) in enumerate(zip(floors, naturals, strict=True)) if n > f]
    while spare > 1e-9 and open_:
        weight = sum(text[i] for i in open_)
        pour = {i: spare * text[i] / weight if weight > 0 else spare / len(open_) for i in open_}
        for i in open_:
            given = min(pour[i], naturals[i] - widths[i])
            widths[i] += given
            spare -= given
        open_ = [i for i in open_ if naturals[i] - widths[i] > 1e-9]
    return widths


def _plain(frame: pd.DataFrame, formats: Mapping[str, str]) -> list[list[str]]:
    """Each column's cells as the text shown (numbers formatted, emails masked), not escaped
    yet: lines are cut before escaping, so an entity like ``&lt;`` is never split."""
    columns: list[list[str]] = []
    for column in frame.columns:
        fmt = formats.get(str(column))
        values: Iterable[object] = frame[column]
        if fmt:
            columns.append(["–" if pd.isna(v) else _number(v, fmt) for v in values])
        else:
            columns.append(["–" if v is None else scrub(str(v)) for v in values])
    return columns


def _number(value: object, fmt: str) -> str:
    """``value`` formatted; a float that rounds to zero shows no minus sign (a gain of -0.04
    read "-0.0" in "What to fix first"). The formats here start at the grouping or precision,
    so ``z`` (Python's negative-zero coercion, floats only) goes first."""
    return format(value, "z" + fmt if isinstance(value, float) else fmt)


def _markup(lines: list[str], bold: bool = False) -> str:
    """Lines as Plotly text: each escaped, bold for a header, joined by ``<br>``."""
    return "<br>".join(f"<b>{label(x)}</b>" if bold else label(x) for x in lines)


def _tall(lines: int) -> int:
    """The height in pixels of a row (or header) whose most wrapped cell has ``lines``."""
    return math.ceil(FIRST_LINE_PX + LINE_PX * (lines - 1))


@dataclass(frozen=True)
class _Layout:
    """A table laid out for :data:`ROOM_PX`: column widths, the header's and each column's
    cells as lines, and the narrowest table width at which every line still fits."""

    widths: list[float]
    head: list[list[str]]
    body: list[list[list[str]]]
    need: float

    def heights(self) -> tuple[int, list[int]]:
        rows = len(self.body[0]) if self.body else 0
        header = _tall(max(len(h) for h in self.head))
        return header, [_tall(max(len(col[r]) for col in self.body)) for r in range(rows)]


def _lay_out(headers: list[str], texts: list[list[str]]) -> _Layout:
    pairs = list(zip(headers, texts, strict=True))
    sizes = [_column_px(h, col) for h, col in pairs]
    text = [text_px(h, True) + sum(text_px(t) for t in col) for h, col in pairs]
    widths = fit_columns([f for f, _ in sizes], [n for _, n in sizes], ROOM_PX, text)
    head = [wrap_px(h, w - CELL_PX, True) for h, w in zip(headers, widths, strict=True)]
    body = [[wrap_px(t, w - CELL_PX) for t in col] for col, w in zip(texts, widths, strict=True)]
    # Narrower than its widths the table's columns shrink together (plotly.js keeps their
    # ratios), so the column whose widest line fills it most sets the least width.
    used = [
        max([text_px(x.rstrip(), True) for x in h] + [text_px(x.rstrip()) for c in col for x in c])
        + CELL_PX
        for h, col in zip(head, body, strict=True)
    ]
    need = sum(widths) * max(u / w for u, w in zip(used, widths, strict=True))
    return _Layout(widths, head, body, need)


def table(
    frame: pd.DataFrame, title: str = "", formats: Mapping[str, str] | None = None
) -> go.Figure:
    """A readable table of a small frame (strings labelled, numbers formatted), sized as the
    module says: no text cut, no row hidden; ``min_width(fig)`` is the width it needs."""
    layout = _lay_out([scrub(str(c)) for c in frame.columns], _plain(frame, formats or {}))
    header_px, row_px = layout.heights()
    fig = go.Figure(
        go.Table(
            columnwidth=layout.widths,
            header={
                "values": [_markup(h, bold=True) for h in layout.head],
                "fill_color": "#264653",
                "font": {"color": "white", "size": FONT_PX},
                "align": "left",
                "height": header_px,
            },
            cells={
                "values": [[_markup(c) for c in col] for col in layout.body],
                "align": "left",
                "fill_color": [["#ffffff", "#f3f5f6"] * (len(frame) // 2 + 1)],
                "font": {"size": FONT_PX},
                "height": _tall(1),
            },
        )
    )
    top = 50 if title else 10
    style(fig, title, top + header_px + sum(row_px) + 10)
    fig.update_layout(
        margin={"t": top, "b": 10, "l": MARGIN_PX, "r": MARGIN_PX},
        meta={"jm_min_width": math.ceil(layout.need + 2 * MARGIN_PX)},
    )
    return fig


def min_width(fig: go.Figure) -> int | None:
    """The narrowest width in pixels a :func:`table` figure can be drawn at without cutting
    text (None for any other figure)."""
    meta = fig.layout.meta
    width = meta.get("jm_min_width") if isinstance(meta, dict) else None
    return int(width) if width is not None else None
