"""How journeys begin and where people go when they drop out: Sankeys of paths, from
``variants`` and from the analysis's ``paths`` (direction ``dropped``)."""

from __future__ import annotations

from collections import defaultdict

import duckdb
import plotly.graph_objects as go

from journeymine.dashboard.reading import Data, MissingTable, columns, degrades, query
from journeymine.dashboard.style import label, style


@degrades
def paths_sankey(
    data: Data, steps: int = 4, start: str | None = None, max_paths: int = 40
) -> go.Figure:
    """The first ``steps`` steps of every journey (from the first ``start`` activity when
    given), from the ``variants`` table: its ``activities`` list when present, else ``variant``
    split on `` → ``. The ``max_paths`` most frequent beginnings are drawn."""
    cols = columns(data, "variants")
    acts = "activities::VARCHAR[]" if "activities" in cols else "string_split(variant, ' → ')"
    heads = query(
        data,
        "variants",
        f"""
        WITH v AS (SELECT {acts} AS acts, cases FROM {{t}}),
        s AS (
            SELECT CASE WHEN ?::VARCHAR IS NULL THEN acts
                        ELSE acts[list_position(acts, ?::VARCHAR):] END AS acts, cases
            FROM v WHERE ?::VARCHAR IS NULL OR list_contains(acts, ?::VARCHAR)
        )
        SELECT head, ends, sum(cases)::BIGINT AS cases FROM (
            SELECT acts[1:{int(steps)}] AS head, len(acts) <= {int(steps)} AS ends, cases FROM s
        ) GROUP BY ALL ORDER BY cases DESC, head
        """,
        [start, start, start, start],
    )
    if heads.empty:
        raise MissingTable(
            "The variants table has no journeys yet"
            + (f" that pass through {start}." if start else ".")
        )
    total = int(heads.cases.sum())
    drawn = heads.head(max_paths)
    end = "(journey ends)"
    rows = [
        ([str(a) for a in head] + ([end] if ends and len(head) < steps else []), int(cases))
        for head, ends, cases in zip(drawn["head"], drawn.ends, drawn.cases, strict=True)
    ]
    shown = int(drawn.cases.sum())
    note = f"{shown:,} of {total:,} journeys ({shown / total:.0%}); the rest begin differently."
    return _sankey(rows, note)


def _sankey(rows: list[tuple[list[str], int]], note: str) -> go.Figure:
    """A Sankey of paths (steps, people), step k of every path in column k."""
    nodes: dict[tuple[int, str], int] = {}
    links: dict[tuple[int, int], int] = defaultdict(int)
    ends = ("(journey ends)", "(end)")
    for path, people in rows:
        for k in range(len(path) - 1):
            a = nodes.setdefault((k, path[k]), len(nodes))
            b = nodes.setdefault((k + 1, path[k + 1]), len(nodes))
            links[(a, b)] += people
        if len(path) == 1:
            nodes.setdefault((0, path[0]), len(nodes))
    names = [name if name in ends else f"{k + 1}. {label(name)}" for (k, name) in nodes]
    node_colours = ["#b8c4cc" if name in ends else "#264653" for (_, name) in nodes]
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": names,
                "pad": 14,
                "thickness": 16,
                "color": node_colours,
                "hovertemplate": "%{label}: %{value:,} people<extra></extra>",
            },
            link={
                "source": [a for a, _ in links],
                "target": [b for _, b in links],
                "value": list(links.values()),
                "color": "rgba(42,157,143,0.35)",
                "hovertemplate": "%{source.label} → %{target.label}: %{value:,} people"
                "<extra></extra>",
            },
            textfont={"size": 12, "color": "#111"},
        )
    )
    fig.add_annotation(
        text=note,
        xref="paper",
        yref="paper",
        x=0,
        y=-0.04,
        yanchor="top",
        showarrow=False,
        font={"size": 12, "color": "#555"},
    )
    style(fig, "", 520)
    fig.update_layout(title=None, margin={"t": 20, "b": 50, "l": 20, "r": 20})
    return fig


@degrades
def dropout_sankey(con: duckdb.DuckDBPyConnection) -> go.Figure:
    """What the people who dropped out of the stage with the most drop-offs did next: the
    ``paths`` rows (analyses.paths, direction ``dropped``) of that stage."""
    columns(con, "paths")
    worst = con.execute(
        "SELECT stage, dropped FROM stage_funnel WHERE segment = 'all' AND stage IN "
        "(SELECT anchor FROM paths WHERE direction = 'dropped') ORDER BY dropped DESC LIMIT 1"
    ).fetchall()
    if not worst:
        raise MissingTable("No stage has people who dropped out yet.")
    stage, dropped = worst[0]
    frame = con.execute(
        "SELECT path, people FROM paths WHERE anchor = ? AND direction = 'dropped' "
        "ORDER BY people DESC",
        [stage],
    ).df()
    rows = [(str(p).split(" → "), int(n)) for p, n in zip(frame.path, frame.people, strict=True)]
    shown = int(frame.people.sum())
    note = (
        f"{int(dropped):,} people dropped out of {label(stage)}; the {len(rows)} most frequent "
        f"paths after entering it cover {shown:,} of them (repeats collapsed)."
    )
    return _sankey(rows, note)
