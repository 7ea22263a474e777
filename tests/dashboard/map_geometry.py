"""Where the journey map's labels land on the dashboard page, to check that none meet."""

from __future__ import annotations

import plotly.graph_objects as go

from journeymine.dashboard.sections import map as journey

Box = tuple[float, float, float, float]  # left, right, bottom, top, in pixels


def label_boxes(fig: go.Figure) -> list[Box]:
    """Where each node's label lands on the dashboard page: the figure's data ranges drawn
    into ``DRAWN_WIDTH_PX`` by the figure's height less its margins, a label as many lines of
    15 px as it has, each ``CHAR_PX`` a character, beside its node's marker."""
    nodes = next(t for t in fig.data if t.mode == "markers+text")
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    high = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    boxes = []
    for x, y, text, where, size in zip(
        nodes.x, nodes.y, nodes.text, nodes.textposition, nodes.marker.size, strict=True
    ):
        lines = text.split("<br>")
        cx = (x - x0) / (x1 - x0) * journey.DRAWN_WIDTH_PX
        cy = (y - y0) / (y1 - y0) * high
        half = max(len(line) for line in lines) * journey.CHAR_PX / 2
        tall = 15 * len(lines)
        near = size / 2 + 2
        bottom = cy + near if where == "top center" else cy - near - tall
        boxes.append((cx - half, cx + half, bottom, bottom + tall))
    return boxes


def overlapping(boxes: list[Box]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes[i + 1 :], i + 1)
        if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]
    ]
