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

Accounts are stitched the same way, one level up (:func:`_stitch_accounts`): account nodes (a
Segment group, a Salesforce Account, a Stripe customer) are joined when one person is linked to
both — through a group call, a Contact's or converted Lead's ``AccountId``, a contact role on an
account's opportunity, or paying through a Stripe customer. An account never holds two
Salesforce Accounts or two Segment groups (the data keeps those apart on purpose); such joins are
refused and kept in ``account_evidence``. Company names and e-mail domains are never evidence.
``person_accounts`` says which account a person belonged to when, so a person who moves company
keeps their history with the account of the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from journeymine import identity_persons
from journeymine.errors import WarehouseError
from journeymine.identity_graph import (
    Node,
    Outcome,
    assign_ids,
    components,
    previous_ids,
    store_merges,
    store_nodes,
)
from journeymine.sources._common import (
    ANONYMOUS_ID,
    SEGMENT_GROUP,
    SF_ACCOUNT,
    SF_CONTACT,
    SF_OPPORTUNITY,
    STRIPE_CUSTOMER,
)
from journeymine.warehouse import table_exists

# Account node types that an account holds at most one of: the data keeps them apart on purpose.
EXCLUSIVE_ACCOUNT_TYPES = (SF_ACCOUNT, SEGMENT_GROUP)
# The Stripe customer belongs to an account only through the people who pay with it.
PAYER_ACCOUNT_TYPES = (STRIPE_CUSTOMER,)
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
    (:mod:`journeymine.identity_persons`), with the same result as a full rebuild; the temp
    tables ``stitch_night`` (the run) and ``stitch_changed_persons`` (the person ids touched,
    before and after) tell :func:`journeymine.touchpoints.build` which rows to rebuild.
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
    if incremental and not why_full:
        con.execute(NIGHT_EDGE_KEYS, [run_id])
        con.execute(NIGHT_EDGES)
        persons = identity_persons.stitch_night(
            con, run_id, match_on_email, max_user_ids_per_person
        )
        accounts = _stitch_accounts_night(con, run_id)
        con.execute("DROP TABLE night_moved_edges")
        con.execute("CREATE TEMP TABLE stitch_night AS SELECT ?::VARCHAR AS run_id", [run_id])
        mode = f"incremental: {persons.recomputed_nodes} identifiers recomputed"
    else:
        # The view aggregates every raw edge: the stitch reads it once, and keeps it for the
        # next night to update.
        con.execute("CREATE OR REPLACE TABLE identity_edges_stored AS FROM identity_edges")
        persons = identity_persons.stitch_all(con, run_id, match_on_email, max_user_ids_per_person)
        accounts = _stitch_accounts(con, run_id)
        mode = "full" + (f": {why_full}" if why_full else "")
    _store_joins(con, accounts.joins)
    return StitchResult(
        _scalar(con, "SELECT count(DISTINCT person_id) FROM identity_nodes"),
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
NIGHT_EDGE_KEYS = """
CREATE OR REPLACE TEMP TABLE night_edge_keys AS
SELECT src_type, src_id, dst_type, dst_id, source, rule, min(observed_at) AS observed_at,
       count(*) AS observations
FROM raw_edges
SEMI JOIN (SELECT source, file, line FROM raw_rows WHERE run_id = $1) USING (source, file, line)
GROUP BY ALL
"""
SAME_EDGE = """s.src_type IS NOT DISTINCT FROM k.src_type AND s.src_id IS NOT DISTINCT FROM k.src_id
  AND s.dst_type IS NOT DISTINCT FROM k.dst_type AND s.dst_id IS NOT DISTINCT FROM k.dst_id
  AND s.source IS NOT DISTINCT FROM k.source AND s.rule IS NOT DISTINCT FROM k.rule"""
NIGHT_EDGES = f"""
CREATE OR REPLACE TEMP TABLE night_moved_edges AS
SELECT k.src_type, k.src_id, k.dst_type, k.dst_id, k.source, k.rule
FROM night_edge_keys k LEFT JOIN identity_edges_stored s ON {SAME_EDGE}
WHERE s.observations IS NULL OR k.observed_at IS NULL OR s.observed_at IS NULL
   OR k.observed_at < s.observed_at;
UPDATE identity_edges_stored s
SET observed_at = least(s.observed_at, k.observed_at),
    observations = s.observations + k.observations
FROM night_edge_keys k WHERE {SAME_EDGE};
INSERT INTO identity_edges_stored
SELECT k.* FROM night_edge_keys k ANTI JOIN identity_edges_stored s ON {SAME_EDGE};
DROP TABLE night_edge_keys;
"""


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
    missing = [t for t in needed if not table_exists(con, t)]
    if missing:
        return f"no previous stitch to extend ({', '.join(missing)} missing)"
    rows = con.execute(
        "SELECT max_user_ids_per_person, match_on_email FROM identity_policy"
    ).fetchall()
    if rows != [(max_user_ids, match_on_email)]:
        return "the identity settings changed since the previous stitch"
    return ""


# The persons whose account links a night may change: those it re-stitched, those a node of
# its edges or events belongs to, and the contacts with a role on a deal one of its edges names.
ACCOUNT_NIGHT_PERSONS = f"""
CREATE OR REPLACE TEMP TABLE account_night_persons AS
WITH night_rows AS (SELECT source, file, line FROM raw_rows WHERE run_id = $1),
night_edges AS (
    SELECT src_type, src_id, dst_type, dst_id FROM raw_edges
    SEMI JOIN night_rows USING (source, file, line)
), ends AS (
    SELECT src_type AS node_type, src_id AS node_id FROM night_edges
    UNION SELECT dst_type, dst_id FROM night_edges
    UNION SELECT r.src_type, r.src_id FROM identity_edges_stored r
    SEMI JOIN night_edges d ON r.dst_type = d.src_type AND r.dst_id = d.src_id
    WHERE r.src_type = '{SF_CONTACT}' AND r.dst_type = '{SF_OPPORTUNITY}'
    UNION SELECT id_type, id_value FROM raw_events SEMI JOIN night_rows USING (source, file, line)
)
SELECT person_id FROM stitch_changed_persons
UNION SELECT person_id FROM identity_nodes SEMI JOIN ends USING (node_type, node_id)
"""

# Whether the night names an account node of a kind an account holds one of: a new one makes
# the accounts be recomputed even when no person's links changed.
NIGHT_ACCOUNT_NODES = f"""
WITH night_rows AS (SELECT source, file, line FROM raw_rows WHERE run_id = $1)
SELECT count(*) FROM raw_edges SEMI JOIN night_rows USING (source, file, line)
WHERE dst_type IN ('{SF_ACCOUNT}', '{SEGMENT_GROUP}')
UNION ALL SELECT count(*) FROM raw_events SEMI JOIN night_rows USING (source, file, line)
WHERE account_type IN ('{SF_ACCOUNT}', '{SEGMENT_GROUP}')
   OR id_type IN ('{SF_ACCOUNT}', '{SEGMENT_GROUP}')
"""


def _stitch_accounts_night(con: duckdb.DuckDBPyConnection, run_id: str) -> _AccountOutcome:
    """Update the account links of the persons the night may change; recompute the accounts
    only when a link changed or a new account node appeared, else keep them as they are."""
    con.execute(ACCOUNT_NIGHT_PERSONS, [run_id])
    mine = "person_id IN (SELECT person_id FROM account_night_persons)"
    con.execute(f"CREATE OR REPLACE TEMP TABLE account_links_before AS "
                f"SELECT * FROM account_links WHERE {mine}")  # fmt: skip
    con.execute(f"DELETE FROM account_links WHERE {mine}")
    nodes = f"(SELECT * FROM identity_nodes WHERE {mine})"
    con.execute("INSERT INTO account_links " + SELECT_ACCOUNT_LINKS.format(nodes=nodes))
    changed = _scalar(
        con,
        f"SELECT count(*) FROM ((SELECT * FROM account_links WHERE {mine} "
        "EXCEPT ALL FROM account_links_before) UNION ALL (FROM account_links_before "
        f"EXCEPT ALL SELECT * FROM account_links WHERE {mine}))",
    )
    new_nodes = sum(r[0] for r in con.execute(NIGHT_ACCOUNT_NODES, [run_id]).fetchall())
    for table in ("account_night_persons", "account_links_before"):
        con.execute(f"DROP TABLE {table}")
    if not changed and not new_nodes:
        joins = con.execute(
            "SELECT rule, joins FROM identity_joins WHERE entity = 'account'"
        ).fetchall()
        return _AccountOutcome(
            _scalar(con, "SELECT count(DISTINCT account_id) FROM account_nodes"),
            0,
            _scalar(con, "SELECT count(*) FROM account_evidence WHERE refused"),
            {str(rule): int(n) for rule, n in joins},
        )
    _snapshot_accounts(con)
    accounts = _accounts_from_links(con, run_id)
    _record_account_changes(con)
    return accounts


def _snapshot_accounts(con: duckdb.DuckDBPyConnection) -> None:
    """Keep the accounts as they were, to find afterwards whose touchpoints they change."""
    con.execute("CREATE OR REPLACE TEMP TABLE night_account_nodes AS FROM account_nodes")
    con.execute("CREATE OR REPLACE TEMP TABLE night_person_accounts AS FROM person_accounts")


# Persons whose touchpoints carry another account now: their periods changed, or an account
# node one of their events names changed id (or appeared, or went).
ACCOUNT_CHANGES = """
INSERT INTO stitch_changed_persons
WITH periods AS (
    (FROM person_accounts EXCEPT FROM night_person_accounts)
    UNION ALL (FROM night_person_accounts EXCEPT FROM person_accounts)
), nodes AS (
    (SELECT node_type, node_id, account_id FROM account_nodes
     EXCEPT SELECT node_type, node_id, account_id FROM night_account_nodes)
    UNION ALL (SELECT node_type, node_id, account_id FROM night_account_nodes
               EXCEPT SELECT node_type, node_id, account_id FROM account_nodes)
)
SELECT person_id FROM periods
UNION SELECT n.person_id FROM raw_events e
JOIN nodes d ON d.node_type = e.account_type AND d.node_id = e.account_value
JOIN identity_nodes n ON n.node_type = e.id_type AND n.node_id = e.id_value
EXCEPT SELECT person_id FROM stitch_changed_persons
"""


def _record_account_changes(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(ACCOUNT_CHANGES)
    con.execute("DROP TABLE night_account_nodes")
    con.execute("DROP TABLE night_person_accounts")


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


# --- accounts ----------------------------------------------------------------------------------

# Every link of a person to an account node, with the rule that makes it. Edges run from the
# person's node to the account node (``dst``), as the parsers emit them. {nodes}: the identity
# nodes of the persons wanted.
SELECT_ACCOUNT_LINKS = f"""
WITH direct AS (  -- group calls; a Contact's, converted Lead's or own deal's AccountId
    SELECT n.person_id, e.dst_type AS node_type, e.dst_id AS node_id, e.rule, e.observed_at
    FROM identity_edges_stored e
    JOIN {{nodes}} n ON n.node_type = e.src_type AND n.node_id = e.src_id
    WHERE e.dst_type IN ('{SF_ACCOUNT}', '{SEGMENT_GROUP}')
), roles AS (  -- every contact role, primary or not, ties the contact to the deal's account
    SELECT n.person_id, d.dst_type, d.dst_id, r.rule, greatest(r.observed_at, d.observed_at)
    FROM identity_edges_stored r
    JOIN {{nodes}} n ON n.node_type = r.src_type AND n.node_id = r.src_id
    JOIN identity_edges_stored d ON d.src_type = r.dst_type AND d.src_id = r.dst_id
    WHERE r.src_type = '{SF_CONTACT}' AND r.dst_type = '{SF_OPPORTUNITY}'
      AND d.dst_type = '{SF_ACCOUNT}'
), payers AS (  -- who pays through a Stripe customer: any person an edge links it to
    SELECT n.person_id, e.src_type, e.src_id, e.rule, e.observed_at
    FROM identity_edges_stored e
    JOIN {{nodes}} n ON n.node_type = e.dst_type AND n.node_id = e.dst_id
    WHERE e.src_type = '{STRIPE_CUSTOMER}'
    UNION ALL
    SELECT n.person_id, e.dst_type, e.dst_id, e.rule, e.observed_at
    FROM identity_edges_stored e
    JOIN {{nodes}} n ON n.node_type = e.src_type AND n.node_id = e.src_id
    WHERE e.dst_type = '{STRIPE_CUSTOMER}'
    UNION ALL  -- the customer's own events (a customer with no e-mail or user id on file)
    SELECT n.person_id, r.id_type, r.id_value, 'stripe_customer_events', min(r.occurred_at)
    FROM raw_events r
    JOIN {{nodes}} n ON n.node_type = r.id_type AND n.node_id = r.id_value
    WHERE r.id_type = '{STRIPE_CUSTOMER}'
    GROUP BY ALL
)
SELECT person_id, node_type, node_id, rule, min(observed_at) AS observed_at
FROM (FROM direct UNION ALL FROM roles UNION ALL FROM payers)
WHERE node_id IS NOT NULL
GROUP BY ALL
"""
ACCOUNT_LINKS = (
    "CREATE OR REPLACE TABLE account_links AS "
    + SELECT_ACCOUNT_LINKS.format(nodes="identity_nodes")
    + " ORDER BY ALL"
)

# Two account nodes one person is linked to: evidence that they are one company. Strongest
# first: more people linked to both, then the two links closest in time (a person who moved
# company links the old and the new account far apart), then the earliest.
ACCOUNT_PAIRS = """
WITH l AS (
    SELECT person_id, node_type, node_id, min(observed_at) AS first_seen
    FROM account_links GROUP BY ALL
)
SELECT a.node_type AS src_type, a.node_id AS src_id, b.node_type AS dst_type,
       b.node_id AS dst_id, count(DISTINCT a.person_id) AS persons,
       min(a.person_id) AS example_person,
       min(abs(epoch(a.first_seen) - epoch(b.first_seen))) AS gap_s,
       min(greatest(a.first_seen, b.first_seen)) AS observed_at
FROM l a JOIN l b ON a.person_id = b.person_id
 AND (a.node_type < b.node_type OR (a.node_type = b.node_type AND a.node_id < b.node_id))
GROUP BY ALL
ORDER BY persons DESC, gap_s, observed_at, src_type, src_id, dst_type, dst_id
"""


@dataclass(frozen=True)
class _AccountOutcome:
    accounts: int
    new_merges: int
    refused: int
    joins: dict[str, int]


def _account_nodes(con: duckdb.DuckDBPyConnection, pairs: pd.DataFrame) -> list[Node]:
    """Every Salesforce Account and Segment group the data names, and the paired Stripe nodes."""
    exclusive = ", ".join(f"'{t}'" for t in EXCLUSIVE_ACCOUNT_TYPES)
    rows = con.execute(
        f"""
        SELECT dst_type, dst_id FROM identity_edges_stored WHERE dst_type IN ({exclusive})
        UNION SELECT account_type, account_value FROM raw_events
        WHERE account_type IN ({exclusive}) AND account_value IS NOT NULL
        UNION SELECT id_type, id_value FROM raw_events WHERE id_type IN ({exclusive})
        """
    ).fetchall()
    paired = set(zip(pairs.src_type, pairs.src_id, strict=True)) | set(
        zip(pairs.dst_type, pairs.dst_id, strict=True)
    )
    return sorted({(t, v) for t, v in rows if v is not None} | paired)


def _stitch_accounts(con: duckdb.DuckDBPyConnection, run_id: str) -> _AccountOutcome:
    """Join account nodes on shared persons, keep ids stable, and date each person's account."""
    con.execute(ACCOUNT_LINKS)
    return _accounts_from_links(con, run_id)


def _accounts_from_links(con: duckdb.DuckDBPyConnection, run_id: str) -> _AccountOutcome:
    pairs = con.execute(ACCOUNT_PAIRS).df().assign(rule="shared_person")
    nodes = _account_nodes(con, pairs)
    limits = dict.fromkeys(EXCLUSIVE_ACCOUNT_TYPES, 1)
    edges = list(
        pairs[["src_type", "src_id", "dst_type", "dst_id", "rule"]].itertuples(
            index=False, name=None
        )
    )
    outcome = components(nodes, edges, limits, "account")
    # A Stripe customer alone is a payer, not a company: only clusters naming one become accounts.
    companies = [c for c in outcome.components if any(t in limits for t, _ in c)]
    assigned, merges = assign_ids(companies, previous_ids(con, "account_nodes", "account_id"))
    store_nodes(con, "account_nodes", "account_id", assigned)
    store_merges(con, "account_merges", merges, run_id)
    _store_account_evidence(con, pairs, outcome)
    con.execute(PERSON_ACCOUNTS)
    return _AccountOutcome(len(companies), len(merges), len(outcome.refused), outcome.joins)


def _store_account_evidence(
    con: duckdb.DuckDBPyConnection, pairs: pd.DataFrame, outcome: Outcome
) -> None:
    """Every pair of account nodes a person links, and whether it was refused and why."""
    refused = pd.DataFrame(
        [(*edge[:4], r.reason, r.kept_apart_by) for edge, r in outcome.refused],
        columns=["src_type", "src_id", "dst_type", "dst_id", "reason", "kept_apart_by"],
    )
    con.register("pair_rows", pairs)
    con.register("refused_rows", refused)
    con.execute(
        """
        CREATE OR REPLACE TABLE account_evidence AS
        SELECT p.src_type::VARCHAR AS src_type, p.src_id::VARCHAR AS src_id,
               p.dst_type::VARCHAR AS dst_type, p.dst_id::VARCHAR AS dst_id,
               p.rule::VARCHAR AS rule, p.persons::BIGINT AS persons,
               p.example_person::BIGINT AS example_person,
               p.observed_at::TIMESTAMPTZ AS observed_at,
               r.reason IS NOT NULL AS refused, r.reason::VARCHAR AS reason,
               r.kept_apart_by::VARCHAR AS kept_apart_by
        FROM pair_rows p
        LEFT JOIN refused_rows r USING (src_type, src_id, dst_type, dst_id)
        """
    )
    con.execute(
        "CREATE OR REPLACE VIEW account_conflicts AS SELECT * FROM account_evidence WHERE refused"
    )
    con.unregister("pair_rows")
    con.unregister("refused_rows")


# A person's accounts over time: each account from the first link to it until the first link to
# the next one. The first account holds from the person's very beginning (valid_from NULL): their
# anonymous visits before they named their company were already that company's.
PERSON_ACCOUNTS = """
CREATE OR REPLACE TABLE person_accounts AS
WITH firsts AS (
    SELECT l.person_id, a.account_id, min(l.observed_at) AS first_linked
    FROM account_links l
    JOIN account_nodes a ON a.node_type = l.node_type AND a.node_id = l.node_id
    GROUP BY ALL
)
SELECT person_id, account_id,
       CASE WHEN row_number() OVER w > 1 THEN first_linked END AS valid_from,
       lead(first_linked) OVER w AS valid_to
FROM firsts
WINDOW w AS (PARTITION BY person_id ORDER BY first_linked, account_id)
ORDER BY person_id, first_linked, account_id
"""


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


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


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
