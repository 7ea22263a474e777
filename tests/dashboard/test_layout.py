"""The layered layout of the journey map."""

from __future__ import annotations

from journeymine.dashboard.layout import layered_layout


def test_layout_layers_break_cycles_deterministically() -> None:
    edges = [
        ("a", "b", 10),
        ("b", "c", 8),
        ("c", "a", 1),
        ("a", "c", 2),
        ("c", "c", 3),
        ("b", "d", 1),
    ]
    layout = layered_layout(edges)
    assert layout.layers == {"a": 0, "b": 1, "c": 2, "d": 2}
    assert layout.back_edges == {("c", "a")}
    assert layout.width == 3 and layout.height == 2
    assert layered_layout(list(reversed(edges))).positions == layout.positions
    assert layered_layout([], nodes=["x"]).positions == {"x": (0.0, 0.0)}
