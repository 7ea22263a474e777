"""Identity stitching: observed identifier links -> persons and accounts, each merge explained.

Every identifier an event or an edge names is a *node* (``anonymous_id``, ``user_id``,
``email``, ``sf_lead``, ``sf_contact``, ``stripe_customer``...). Edges observed in the sources
(``identity_edges``) join nodes; a connected component of person nodes is one person.

Rules that keep stitching honest:

* **At most ``max_user_ids_per_person`` product users per person** (default 1, Segment's
  shared-mailbox rule). A merge that would exceed it is refused and recorded in
  ``identity_conflicts`` with the rule that kept the pair apart (``kept_apart_by``) and whether
  the other setting would have merged them. Edges are applied strongest first — direct id
  links before email matches, then by time — so the outcome does not depend on file order.
* **Email matching can be switched off** (``match_on_email=False``): edges touching an email
  node are then ignored for merging.
* **A deal belongs to one person**: of an opportunity's contact roles, only the primary one (or
  the earliest) attaches the opportunity's events to a person; the others are not merges.
* **Stable ids.** ``identity_nodes`` keeps each node's person id across runs. A component keeps
  the smallest (oldest) id its nodes already had; the ids it absorbs are listed in
  ``person_merges``. New components get new ids above the current maximum.

Accounts are stitched the same way, one level up (:mod:`journeymine.canonical.identity_accounts`).

**Incremental nights.** After a load, only the persons and accounts its new rows can reach are
recomputed (:mod:`journeymine.canonical.identity_persons`), with exactly the result of a full
rebuild; the full rebuild runs when there is no previous stitch to extend, when the settings
changed, or when the caller asks for it (a replaced file, whose removed rows can split persons).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from journeymine.canonical import identity_persons
from journeymine.canonical.identity_accounts import stitch_accounts, stitch_accounts_night
from journeymine.canonical.identity_graph import scalar as _scalar
from journeymine.errors import WarehouseError
from journeymine.vocabulary import (
    ANONYMOUS_ID,
)
from journeymine.warehouse import table_exists, table_names

DEFAULT_GIANT_SHARE = 0.05  # one cluster holding more than this share of identifiers is suspect
DEFAULT_GIANT_MIN_SIZE = 10  # ...and at least this many identifiers (tiny data is not a failure)

EDGES_VIEW = """
CREATE OR REPLACE VIEW identity_edges AS
SELECT src_type, src_id, dst_type, dst_id, source, rule, min(observed_at) AS observed_at,
       count(*) AS observations
FROM raw_edges GROUP BY ALL
"""

TABLES = """
CREATE TABLE IF NOT EXISTS account_merges (
    merged_account_id BIGINT, into_account_id BIGINT, merged_at TIMESTAMPTZ, run_id VARCHAR
);
"""


@dataclass(frozen=True)
class StitchResult:
    persons: int
    new_merges: int
    conflicts: int
    accounts: int = 0
    new_account_merges: int = 0
    account_conflicts: int = 0
    mode: str = "full"  # "full", "full: <why not incremental>" or "incremental: <how much>"


def stitch(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    match_on_email: bool = True,
    max_user_ids_per_person: int = 1,
    incremental: bool = False,
) -> StitchResult:
    """Stitch persons and accounts; runs in the caller's transaction.

    With ``incremental``, only the persons the rows loaded by ``run_id`` reach are recomputed
    (:mod:`journeymine.canonical.identity_persons`), with the same result as a full rebuild;
    the temp tables ``stitch_night`` (the run), ``stitch_changed_persons`` (the person ids touched,
    before and after) and ``stitch_moved_persons`` (those whose events changed person or
    account) tell :func:`journeymine.canonical.touchpoints.build` which rows to rebuild, and
    ``night_raw_rows``, ``night_raw_events``, ``night_raw_edges`` and ``night_raw_labels`` hold
    the run's raw rows, so that no later step scans the raw layer to find them again.
    When the warehouse holds no previous stitch to build on, it falls back to a full one and
    says why in ``StitchResult.mode``.
    """
    if max_user_ids_per_person < 1:
        raise ValueError(
            f"identity.max_user_ids_per_person must be at least 1, got {max_user_ids_per_person}"
        )
    con.execute(EDGES_VIEW)
    con.execute(TABLES)
    con.execute("DROP TABLE IF EXISTS stitch_night")  # a full stitch leaves a full rebuild
    why_full = _why_full(con, match_on_email, max_user_ids_per_person) if incremental else ""
    night = incremental and not why_full
    stitch_persons, stitch_accounts_of = (
        (_persons_night, stitch_accounts_night) if night else (_persons_all, stitch_accounts)
    )
    persons = stitch_persons(con, run_id, match_on_email, max_user_ids_per_person)
    accounts = stitch_accounts_of(con, run_id)
    _store_joins(con, accounts.joins)
    if night:
        con.execute("DROP TABLE night_moved_edges; DROP TABLE night_nodes")
        con.execute("CREATE TEMP TABLE stitch_night AS SELECT ?::VARCHAR AS run_id", [run_id])
        mode = f"incremental: {persons.recomputed_nodes} identifiers recomputed"
        # From the previous count (``persons`` holds one row per person of the previous
        # stitch): counting the distinct ids of every node cost more than most steps.
        count = _scalar(con, "SELECT count(*) FROM persons") + persons.persons_added
    else:
        mode = "full" + (f": {why_full}" if why_full else "")
        count = _scalar(con, "SELECT count(DISTINCT person_id) FROM identity_nodes")
    return StitchResult(
        count,
        persons.new_merges,
        _scalar(con, "SELECT count(*) FROM identity_conflicts"),
        accounts.accounts,
        accounts.new_merges,
        accounts.refused,
        mode,
    )


# ``identity_edges_stored`` brought up to date with the edges the night observed. Within an
# incremental night rows are only added, so each edge's first observation is the earlier of
# the two and the counts add up. ``night_moved_edges``: the edges the night made new or moved
# earlier (a NULL time is counted as moved: more seeds never change the answer, only its cost).
# The stored table is searched by its six key columns once (``night_edge_keys`` keeps the rowid
# of each edge already stored): the update then goes by rowid.
NIGHT_EDGE_KEYS = """
CREATE OR REPLACE TEMP TABLE night_edge_keys AS
WITH k AS (
    SELECT src_type, src_id, dst_type, dst_id, source, rule, min(observed_at) AS observed_at,
           count(*) AS observations
    FROM night_raw_edges GROUP BY ALL
)
SELECT k.*, s.rowid AS row_id, s.observed_at AS stored_at
FROM k LEFT JOIN identity_edges_stored s ON {same}
""".format(
    same="""s.src_type IS NOT DISTINCT FROM k.src_type AND s.src_id IS NOT DISTINCT FROM k.src_id
  AND s.dst_type IS NOT DISTINCT FROM k.dst_type AND s.dst_id IS NOT DISTINCT FROM k.dst_id
  AND s.source IS NOT DISTINCT FROM k.source AND s.rule IS NOT DISTINCT FROM k.rule"""
)
NIGHT_EDGES = """
CREATE OR REPLACE TEMP TABLE night_moved_edges AS
SELECT src_type, src_id, dst_type, dst_id, source, rule FROM night_edge_keys
WHERE row_id IS NULL OR observed_at IS NULL OR stored_at IS NULL OR observed_at < stored_at;
UPDATE identity_edges_stored s
SET observed_at = least(s.observed_at, k.observed_at),
    observations = s.observations + k.observations
FROM night_edge_keys k WHERE s.rowid = k.row_id;
INSERT INTO identity_edges_stored
SELECT src_type, src_id, dst_type, dst_id, source, rule, observed_at, observations
FROM night_edge_keys WHERE row_id IS NULL;
DROP TABLE night_edge_keys;
"""


# The run's raw rows, found once: each is a search of a raw table, which every later step of
# the night would otherwise repeat. Edges and labels: the files come first: a file filter is
# checked against the column's dictionary, ~30x faster than joining every row on (source, file,
# line), and an incremental night loads no file twice (a replaced one makes the stitch full).
# Events by range: a load numbers its events above every earlier one, and ``touchpoints`` (the
# previous run's) holds earlier events only, so the night's all lie above its largest event id;
# zone maps on ``seq`` then skip every row group but the last (the file filter read the file
# column of every event, a cost that grew with the warehouse), and the join keeps exactly the
# run's (an earlier event above that id is one without a touchpoint). Events, edges and labels
# keep all their columns: a night's few thousand rows are cheap to copy. The largest event id
# is read first and bound: as a subquery in the condition it made the statement ~4 ms slower
# (15.6 against 11.3 ms at 1M), the bound being known to the scan only at run time.
NIGHT_RAW = (
    "CREATE OR REPLACE TEMP TABLE night_raw_rows AS "
    "SELECT source, file, line, record_key FROM raw_rows WHERE run_id = $1",
    "CREATE OR REPLACE TEMP TABLE night_raw_events AS SELECT * FROM raw_events "
    "SEMI JOIN night_raw_rows USING (source, file, line) "
    "WHERE seq > $1",
    *(
        f"CREATE OR REPLACE TEMP TABLE night_raw_{kind} AS SELECT * FROM raw_{kind} "
        "SEMI JOIN night_raw_rows USING (source, file, line) "
        "WHERE file IN (SELECT DISTINCT file FROM night_raw_rows)"
        for kind in ("edges", "labels")
    ),
)


def _night_raw(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    con.execute(NIGHT_RAW[0], [run_id])
    con.execute(NIGHT_RAW[1], [_scalar(con, "SELECT coalesce(max(event_id), 0) FROM touchpoints")])
    for statement in NIGHT_RAW[2:]:
        con.execute(statement)


def _persons_night(
    con: duckdb.DuckDBPyConnection, run_id: str, match_on_email: bool, max_user_ids: int
) -> identity_persons.PersonsResult:
    """The night's raw rows and edges found once, then only the persons they reach."""
    _night_raw(con, run_id)
    con.execute(NIGHT_EDGE_KEYS)
    con.execute(NIGHT_EDGES)
    return identity_persons.stitch_night(con, run_id, match_on_email, max_user_ids)


def _persons_all(
    con: duckdb.DuckDBPyConnection, run_id: str, match_on_email: bool, max_user_ids: int
) -> identity_persons.PersonsResult:
    # The view aggregates every raw edge: the stitch reads it once, and keeps it for the
    # next night to update.
    con.execute("CREATE OR REPLACE TABLE identity_edges_stored AS FROM identity_edges")
    return identity_persons.stitch_all(con, run_id, match_on_email, max_user_ids)


def _why_full(con: duckdb.DuckDBPyConnection, match_on_email: bool, max_user_ids: int) -> str:
    """Why this warehouse's previous stitch cannot be extended (empty when it can)."""
    needed = (
        "identity_edges_stored",
        "identity_policy",
        "identity_conflicts",
        "identity_components",
        "identity_component_joins",
        "identity_joins",
        "account_links",
        "account_evidence",
        "person_accounts",
        "touchpoints",
        "persons",
    )
    present = table_names(con, temporary=False)  # one read: 11 table_exists calls cost 0.1 s
    missing = [t for t in needed if t not in present]
    if missing:
        return f"no previous stitch to extend ({', '.join(missing)} missing)"
    rows = con.execute(
        "SELECT max_user_ids_per_person, match_on_email FROM identity_policy"
    ).fetchall()
    if rows != [(max_user_ids, match_on_email)]:
        return "the identity settings changed since the previous stitch"
    return ""


def _store_joins(con: duckdb.DuckDBPyConnection, account_joins: dict[str, int]) -> None:
    """How many joins of two clusters each rule made, for the quality report."""
    con.execute(
        "CREATE OR REPLACE TABLE identity_joins AS "
        "SELECT 'person' AS entity, rule, sum(joins)::BIGINT AS joins "
        "FROM identity_component_joins GROUP BY rule ORDER BY rule"
    )
    if account_joins:
        con.executemany(
            "INSERT INTO identity_joins VALUES ('account', ?, ?)",
            [[rule, n] for rule, n in sorted(account_joins.items())],
        )


def explain_account(con: duckdb.DuckDBPyConnection, account_id: int) -> str:
    """What made this account, as text: its identifiers, the shared persons that joined them,
    the joins refused and why, the account ids it absorbed, and its persons over time."""
    _require_stitched(con)
    nodes = con.execute(
        "SELECT node_type, node_id FROM account_nodes WHERE account_id = ? ORDER BY ALL",
        [account_id],
    ).fetchall()
    if not nodes:
        return f"account {account_id}: no such account in this warehouse"
    lines = [f"account {account_id}: " + ", ".join(f"{t} {v}" for t, v in nodes)]
    lines += _explain_evidence(con, account_id)
    merged = con.execute(
        "SELECT merged_account_id, merged_at, run_id FROM account_merges "
        "WHERE into_account_id = ? ORDER BY merged_at, merged_account_id",
        [account_id],
    ).fetchall()
    lines += [f"  absorbed account {m} on {at:%Y-%m-%d %H:%M} (run {run})" for m, at, run in merged]
    members = con.execute(
        "SELECT person_id, valid_from, valid_to FROM person_accounts WHERE account_id = ? "
        "ORDER BY person_id, valid_from NULLS FIRST",
        [account_id],
    ).fetchall()
    lines += [f"  person {p}: {_period(start, end)}" for p, start, end in members]
    return "\n".join(lines)


def _explain_evidence(con: duckdb.DuckDBPyConnection, account_id: int) -> list[str]:
    rows = con.execute(
        """
        WITH mine AS (SELECT node_type, node_id FROM account_nodes WHERE account_id = $1)
        SELECT src_type, src_id, dst_type, dst_id, persons, example_person, refused, reason,
               (src_type, src_id) IN (SELECT (node_type, node_id) FROM mine)
               AND (dst_type, dst_id) IN (SELECT (node_type, node_id) FROM mine) AS inside
        FROM account_evidence
        WHERE (src_type, src_id) IN (SELECT (node_type, node_id) FROM mine)
           OR (dst_type, dst_id) IN (SELECT (node_type, node_id) FROM mine)
        ORDER BY refused, observed_at, src_type, src_id, dst_type, dst_id
        """,
        [account_id],
    ).fetchall()
    lines = []
    for st, si, dt, di, persons, example, refused, reason, inside in rows:
        pair = f"{st} {si} + {dt} {di}: {persons} person(s) linked to both (e.g. person {example})"
        if refused:
            lines.append(f"  refused  {pair}; {reason}")
        elif inside:
            lines.append(f"  joined   {pair}")
    return lines


def _period(start: datetime | None, end: datetime | None) -> str:
    since = "from the start" if start is None else f"from {start:%Y-%m-%d %H:%M}"
    return since + ("" if end is None else f" until {end:%Y-%m-%d %H:%M}")


def explain_person(con: duckdb.DuckDBPyConnection, person_id: int) -> pd.DataFrame:
    """The links that made this person: every edge between two of its nodes, with its rule,
    plus the merges that were refused (``refused`` = True, with the reason)."""
    return con.execute(
        """
        WITH mine AS (SELECT node_type, node_id FROM identity_nodes WHERE person_id = $1)
        SELECT e.src_type, e.src_id, e.dst_type, e.dst_id, e.source, e.rule, e.observed_at,
               false AS refused, NULL AS reason
        FROM identity_edges e
        WHERE (e.src_type, e.src_id) IN (SELECT (node_type, node_id) FROM mine)
          AND (e.dst_type, e.dst_id) IN (SELECT (node_type, node_id) FROM mine)
        UNION ALL
        SELECT c.src_type, c.src_id, c.dst_type, c.dst_id, c.source, c.rule, c.observed_at,
               true, c.reason
        FROM identity_conflicts c
        WHERE (c.src_type, c.src_id) IN (SELECT (node_type, node_id) FROM mine)
           OR (c.dst_type, c.dst_id) IN (SELECT (node_type, node_id) FROM mine)
        ORDER BY refused, observed_at
        """,
        [person_id],
    ).df()


# --- quality ------------------------------------------------------------------------------------

# Identifiers per cluster. An account holds its own nodes and the nodes of its current persons,
# so one account swallowing many people shows as clearly as one person swallowing many devices.
CLUSTER_SIZES = """
SELECT 'person' AS kind, person_id AS id, count(*) AS identifiers
FROM identity_nodes GROUP BY person_id
UNION ALL
SELECT 'account', account_id, sum(identifiers) FROM (
    SELECT account_id, count(*) AS identifiers FROM account_nodes GROUP BY account_id
    UNION ALL
    SELECT pa.account_id, count(*) FROM person_accounts pa
    JOIN identity_nodes n USING (person_id) WHERE pa.valid_to IS NULL GROUP BY pa.account_id
) GROUP BY account_id
"""


def identity_quality(
    con: duckdb.DuckDBPyConnection,
    *,
    giant_share: float = DEFAULT_GIANT_SHARE,
    giant_min_size: int = DEFAULT_GIANT_MIN_SIZE,
    top: int = 5,
) -> dict[str, Any]:
    """Identity figures for the run summary: counts, merges and refusals by rule, the share of
    touchpoints on anonymous-only persons, the largest clusters, and giant-cluster warnings.

    A cluster is *giant* when it holds more than ``giant_share`` of all identifiers (person and
    account nodes) and at least ``giant_min_size`` of them — the classic stitching failure.
    """
    _require_stitched(con)
    sizes = con.execute(CLUSTER_SIZES).df()
    total = _scalar(
        con, "SELECT (SELECT count(*) FROM identity_nodes) + (SELECT count(*) FROM account_nodes)"
    )
    largest = {
        kind: _largest(sizes[sizes.kind == kind], total, top) for kind in ("person", "account")
    }
    return {
        "persons": _scalar(con, "SELECT count(DISTINCT person_id) FROM identity_nodes"),
        "accounts": _scalar(con, "SELECT count(DISTINCT account_id) FROM account_nodes"),
        "identifiers": total,
        "person_merges": _scalar(con, "SELECT count(*) FROM person_merges"),
        "account_merges": _scalar(con, "SELECT count(*) FROM account_merges"),
        "joins_by_rule": _by_rule(con, "SELECT entity, rule, joins FROM identity_joins"),
        "refusals_by_rule": _by_rule(con, REFUSALS_BY_RULE),
        "policy": _policy(con),
        "anonymous_only_touchpoint_share": _anonymous_share(con),
        "largest": largest,
        "warnings": _giant_warnings(largest, giant_share, giant_min_size),
    }


REFUSALS_BY_RULE = """
SELECT 'person', kept_apart_by, count(*) FROM identity_conflicts GROUP BY ALL
UNION ALL
SELECT 'account', kept_apart_by, count(*) FROM account_evidence WHERE refused GROUP BY ALL
"""


def _require_stitched(con: duckdb.DuckDBPyConnection) -> None:
    """Warehouses stitched by an older version lack the account and policy tables."""
    for table in ("identity_policy", "identity_joins", "account_evidence", "account_merges"):
        if not table_exists(con, table):
            raise WarehouseError(
                f"no {table} in this warehouse: it was stitched by an older journeymine; "
                "run `journeymine run` once to stitch it again"
            )


def _policy(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    cursor = con.execute("SELECT * FROM identity_policy")
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row or (), strict=False))


def _by_rule(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {"person": {}, "account": {}}
    for entity, rule, n in con.execute(sql).fetchall():
        out[entity][rule] = int(n)
    return out


def _largest(sizes: pd.DataFrame, total: int, top: int) -> list[dict[str, Any]]:
    biggest = sizes.sort_values(["identifiers", "id"], ascending=[False, True]).head(top)
    return [
        {"id": int(r.id), "identifiers": int(r.identifiers), "share": r.identifiers / total}
        for r in biggest.itertuples()
    ]


def _giant_warnings(
    largest: dict[str, list[dict[str, Any]]], share: float, min_size: int
) -> list[str]:
    return [
        f"giant {kind}: {kind} {c['id']} holds {c['identifiers']} identifiers "
        f"({c['share']:.1%} of all, more than {share:.1%}); check the links that made it "
        f"(explain-{kind} {c['id']})"
        for kind, clusters in largest.items()
        for c in clusters
        if c["share"] > share and c["identifiers"] >= min_size
    ]


def _anonymous_share(con: duckdb.DuckDBPyConnection) -> float:
    """Share of touchpoints whose person is only cookies/devices: the journeys we cannot name."""
    row = con.execute(
        f"""
        WITH anonymous AS (
            SELECT person_id FROM identity_nodes GROUP BY person_id
            HAVING bool_and(node_type = '{ANONYMOUS_ID}')
        )
        SELECT count(*) FILTER (WHERE person_id IN (FROM anonymous)), count(*) FROM touchpoints
        """
    ).fetchone()
    return row[0] / row[1] if row and row[1] else 0.0
