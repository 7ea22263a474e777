"""Account stitching, one level up from persons: account nodes (a Segment group, a Salesforce
Account, a Stripe customer) are joined when one person is linked to both — through a group
call, a Contact's or converted Lead's ``AccountId``, a contact role on an account's
opportunity, or paying through a Stripe customer. An account never holds two Salesforce
Accounts or two Segment groups (the data keeps those apart on purpose); such joins are refused
and kept in ``account_evidence``. Company names and e-mail domains are never evidence.
``person_accounts`` says which account a person belonged to when, so a person who moves
company keeps their history with the account of the time.

A night (:func:`stitch_accounts_night`) updates ``account_links`` for the persons it may change
and recomputes the accounts only when a new account node appeared or one of those persons links
two account nodes (only then can the pairs that make accounts change).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from journeymine.canonical.identity_graph import (
    Node,
    Outcome,
    assign_ids,
    components,
    previous_ids,
    scalar,
    store_merges,
    store_nodes,
)
from journeymine.vocabulary import (
    SEGMENT_GROUP,
    SF_ACCOUNT,
    SF_CONTACT,
    SF_OPPORTUNITY,
    SHARED_PERSON,
    STRIPE_CUSTOMER,
)

# Account node types that an account holds at most one of: the data keeps them apart on purpose.
EXCLUSIVE_ACCOUNT_TYPES = (SF_ACCOUNT, SEGMENT_GROUP)

# Every link of a person to an account node, with the rule that makes it. Edges run from the
# person's node to the account node (``dst``), as the parsers emit them. {nodes}: the identity
# nodes of the persons wanted. (An IN list of constants becomes a join that reads every stored
# edge's strings; list_contains filters in the scan.)
SELECT_ACCOUNT_LINKS = f"""
WITH direct AS (  -- group calls; a Contact's, converted Lead's or own deal's AccountId
    SELECT n.person_id, e.dst_type AS node_type, e.dst_id AS node_id, e.rule, e.observed_at
    FROM identity_edges_stored e
    JOIN {{nodes}} n ON n.node_type = e.src_type AND n.node_id = e.src_id
    WHERE list_contains(['{SF_ACCOUNT}', '{SEGMENT_GROUP}'], e.dst_type)  -- not IN: see below
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
class AccountOutcome:
    accounts: int
    new_merges: int
    refused: int
    joins: dict[str, int]


# Every Salesforce Account and Segment group the data names. {edges} and {events}: the raw
# layer (a full stitch), or the night's rows (``night_raw_*``) plus the previous accounts' own
# such nodes: within a night rows are only added, and every such node ends in an account.
EXCLUSIVE = ", ".join(f"'{t}'" for t in EXCLUSIVE_ACCOUNT_TYPES)
EXCLUSIVE_NODES = f"""
SELECT dst_type, dst_id FROM {{edges}} WHERE dst_type IN ({EXCLUSIVE})
UNION SELECT account_type, account_value FROM {{events}}
WHERE account_type IN ({EXCLUSIVE}) AND account_value IS NOT NULL
UNION SELECT id_type, id_value FROM {{events}} WHERE id_type IN ({EXCLUSIVE})
"""
NIGHT_EXCLUSIVE_NODES = (
    EXCLUSIVE_NODES.format(edges="night_raw_edges", events="night_raw_events")
    + f"UNION SELECT node_type, node_id FROM account_nodes WHERE node_type IN ({EXCLUSIVE})"
)


def _account_nodes(con: duckdb.DuckDBPyConnection, pairs: pd.DataFrame, night: bool) -> list[Node]:
    """Every Salesforce Account and Segment group the data names, and the paired Stripe nodes."""
    rows = con.execute(
        NIGHT_EXCLUSIVE_NODES
        if night
        else EXCLUSIVE_NODES.format(edges="identity_edges_stored", events="raw_events")
    ).fetchall()
    paired = set(zip(pairs.src_type, pairs.src_id, strict=True)) | set(
        zip(pairs.dst_type, pairs.dst_id, strict=True)
    )
    return sorted({(t, v) for t, v in rows if v is not None} | paired)


def stitch_accounts(con: duckdb.DuckDBPyConnection, run_id: str) -> AccountOutcome:
    """Join account nodes on shared persons, keep ids stable, and date each person's account."""
    con.execute(ACCOUNT_LINKS)
    return _accounts_from_links(con, run_id)


def _accounts_from_links(
    con: duckdb.DuckDBPyConnection, run_id: str, night: bool = False
) -> AccountOutcome:
    pairs = con.execute(ACCOUNT_PAIRS).df().assign(rule=SHARED_PERSON)
    nodes = _account_nodes(con, pairs, night)
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
    return AccountOutcome(len(companies), len(merges), len(outcome.refused), outcome.joins)


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
SELECT_PERIODS = """
WITH firsts AS (
    SELECT l.person_id, a.account_id, min(l.observed_at) AS first_linked
    FROM account_links l
    JOIN account_nodes a ON a.node_type = l.node_type AND a.node_id = l.node_id
    WHERE {persons}
    GROUP BY ALL
)
SELECT person_id, account_id,
       CASE WHEN row_number() OVER w > 1 THEN first_linked END AS valid_from,
       lead(first_linked) OVER w AS valid_to
FROM firsts
WINDOW w AS (PARTITION BY person_id ORDER BY first_linked, account_id)
"""
PERSON_ACCOUNTS = (
    "CREATE OR REPLACE TABLE person_accounts AS "
    + SELECT_PERIODS.format(persons="true")
    + "ORDER BY person_id, first_linked, account_id"
)
# A night that keeps the accounts dates again only the persons whose links it changed.
RELINKED = "person_id IN (SELECT person_id FROM account_relinked)"
RELINKED_PERIODS = f"""
CREATE OR REPLACE TEMP TABLE night_person_accounts AS FROM person_accounts WHERE {RELINKED};
DELETE FROM person_accounts WHERE {RELINKED};
INSERT INTO person_accounts {SELECT_PERIODS.format(persons="l." + RELINKED)};
INSERT INTO stitch_account_moved
SELECT person_id FROM (
    (FROM person_accounts WHERE {RELINKED} EXCEPT FROM night_person_accounts)
    UNION ALL (FROM night_person_accounts EXCEPT FROM person_accounts WHERE {RELINKED})
);
INSERT INTO stitch_moved_persons SELECT DISTINCT person_id FROM stitch_account_moved
EXCEPT SELECT person_id FROM stitch_moved_persons;
DROP TABLE night_person_accounts;
"""


# The persons whose account links a night may change: those whose identifiers it moved to another
# person (``stitch_moved_persons``, before and after; a person that only gained identifiers gains
# them through the night's edges and events, below), the persons at either end of the night's
# edges that a link is made of (to a Salesforce Account or Segment group, to a Stripe customer,
# a contact role), the persons of its Stripe customers' events, and the contacts with a role on
# a deal one of its edges ties to an Account. Other edges and events make no link: their persons
# keep their links unless their identifiers moved.
#
# A link belongs to one identifier of the person (an edge or event of that node), so a person
# whose identifiers all went to one other person (a merge) hands its links over as they are:
# ``account_merged`` (before, after). Only the others (``account_night_persons``: the ends of
# link-making edges and events, and both sides of a split) have their links searched again; a
# merged person that joined one of them is searched again as part of it.
LINK_TYPES = ", ".join(f"'{t}'" for t in (SF_ACCOUNT, SEGMENT_GROUP, STRIPE_CUSTOMER))
NIGHT_LINK_EDGES = f"""
SELECT src_type, src_id, dst_type, dst_id FROM night_raw_edges
WHERE src_type IN ({LINK_TYPES}) OR dst_type IN ({LINK_TYPES})
   OR (src_type = '{SF_CONTACT}' AND dst_type = '{SF_OPPORTUNITY}')
"""
NIGHT_STRIPE_EVENTS = f"night_raw_events WHERE id_type = '{STRIPE_CUSTOMER}'"
# How many of the night's rows can make a link: on most nights none, and then the search of
# their ends' persons (a scan of identity_nodes and of the stored contact roles) is left out.
NIGHT_LINK_ROWS = f"""
SELECT (SELECT count(*) FROM ({NIGHT_LINK_EDGES})) + (SELECT count(*) FROM {NIGHT_STRIPE_EVENTS})
"""
LINK_ENDS_PERSONS = f"""
UNION SELECT person_id FROM identity_nodes SEMI JOIN (
    WITH night_edges AS ({NIGHT_LINK_EDGES})
    SELECT src_type AS node_type, src_id AS node_id FROM night_edges
    UNION SELECT dst_type, dst_id FROM night_edges
    UNION SELECT r.src_type, r.src_id FROM identity_edges_stored r
    SEMI JOIN night_edges d ON r.dst_type = d.src_type AND r.dst_id = d.src_id
    WHERE r.src_type = '{SF_CONTACT}' AND r.dst_type = '{SF_OPPORTUNITY}'
    UNION SELECT id_type, id_value FROM {NIGHT_STRIPE_EVENTS}
) ends USING (node_type, node_id)
"""
# {ends}: LINK_ENDS_PERSONS, or nothing when the night has no row that makes a link.
ACCOUNT_NIGHT_PERSONS = """
CREATE OR REPLACE TEMP TABLE account_night_persons AS
WITH split AS (  -- previous persons of the moves whose identifiers did not all go to one person
    SELECT before FROM stitch_person_targets
    WHERE before IN (SELECT person_id FROM stitch_moved_persons)
    GROUP BY before HAVING count(*) > 1 OR count(after) < count(*)
)
SELECT before AS person_id FROM split
UNION SELECT after FROM stitch_person_targets WHERE before IN (FROM split) AND after IS NOT NULL
{ends}
"""
ACCOUNT_MERGED = """
CREATE OR REPLACE TEMP TABLE account_merged AS
SELECT before, after FROM stitch_person_targets
WHERE before IN (SELECT person_id FROM stitch_moved_persons)
  AND before NOT IN (SELECT person_id FROM account_night_persons)
  AND after NOT IN (SELECT person_id FROM account_night_persons)
"""
MERGED_LINKS = """
INSERT INTO account_links_after
SELECT m.after, l.node_type, l.node_id, l.rule, min(l.observed_at)
FROM account_links_before l JOIN account_merged m ON m.before = l.person_id
GROUP BY ALL
"""

PERIODS_BEFORE = """
CREATE OR REPLACE TEMP TABLE stitch_periods_before AS
SELECT * FROM person_accounts WHERE person_id IN (SELECT before FROM stitch_person_targets);
CREATE OR REPLACE TEMP TABLE stitch_account_moved (person_id BIGINT);
"""

# Whether the night names an account node of a kind an account holds one of: a new one makes
# the accounts be recomputed even when no person's links changed.
NIGHT_ACCOUNT_NODES = f"""
SELECT count(*) FROM night_raw_edges WHERE dst_type IN ('{SF_ACCOUNT}', '{SEGMENT_GROUP}')
UNION ALL SELECT count(*) FROM night_raw_events
WHERE account_type IN ('{SF_ACCOUNT}', '{SEGMENT_GROUP}')
   OR id_type IN ('{SF_ACCOUNT}', '{SEGMENT_GROUP}')
"""


def stitch_accounts_night(con: duckdb.DuckDBPyConnection, run_id: str) -> AccountOutcome:
    """Update the account links of the persons the night may change; recompute the accounts
    only when a new account node appeared or a changed person holds two linked account nodes
    (before or after: only then can the pairs of account nodes change), else keep them and
    date again only the changed persons' accounts.

    Leaves two temp tables for the touchpoints: ``stitch_periods_before``, the accounts over
    time (``person_accounts`` rows) of the persons the identity stitch moved, as they were, and
    ``stitch_account_moved``, the persons whose touchpoints carry another account now (also
    added to ``stitch_moved_persons``)."""
    con.execute(PERIODS_BEFORE)
    paired = _update_night_links(con)
    new_nodes = sum(r[0] for r in con.execute(NIGHT_ACCOUNT_NODES).fetchall())
    if new_nodes or paired:
        con.execute("DROP TABLE account_relinked")
        _snapshot_accounts(con)
        accounts = _accounts_from_links(con, run_id, night=True)
        _record_account_changes(con)
        return accounts
    # The same accounts: only the relinked persons' periods can differ (none without accounts).
    nodes, accounts_now = con.execute(
        "SELECT count(*), count(DISTINCT account_id) FROM account_nodes"
    ).fetchall()[0]
    if nodes:
        con.execute(RELINKED_PERIODS)
    con.execute("DROP TABLE account_relinked")
    joins = con.execute("SELECT rule, joins FROM identity_joins WHERE entity = 'account'")
    kept = {str(rule): int(n) for rule, n in joins.fetchall()}
    return AccountOutcome(
        int(accounts_now),
        0,
        scalar(con, "SELECT count(*) FROM account_evidence WHERE refused"),
        kept,
    )


def _update_night_links(con: duckdb.DuckDBPyConnection) -> int:
    """Bring ``account_links`` up to date for the persons the night may change (the temp table
    ``account_relinked``); returns how many of those persons hold two linked account nodes,
    before or after."""
    ends = LINK_ENDS_PERSONS if scalar(con, NIGHT_LINK_ROWS) else ""
    # With no person to search from (most nights), the search would still scan every edge.
    searched = scalar(con, ACCOUNT_NIGHT_PERSONS.format(ends=ends))  # the rows it made
    merged = scalar(con, ACCOUNT_MERGED)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE account_relinked AS SELECT person_id FROM "
        "account_night_persons UNION SELECT person_id FROM stitch_moved_persons"
    )
    mine = "person_id IN (SELECT person_id FROM account_relinked)"
    # Before and after in small temp tables: the comparison never reads account_links again,
    # and the persons' nodes are read once, not once per kind of link.
    before = scalar(con, f"CREATE OR REPLACE TEMP TABLE account_links_before AS "
                         f"SELECT * FROM account_links WHERE {mine}")  # fmt: skip
    # No link held and none to search for (most nights where accounts are few): the persons'
    # links stay none, and the five statements that would rewrite them are left out.
    paired = _relink(con, mine, searched, merged) if before or searched else 0
    con.execute(
        "".join(
            f"DROP TABLE IF EXISTS account_{table};"
            for table in ("night_persons", "merged", "links_before", "night_nodes", "links_after")
        )
    )
    return paired


def _relink(con: duckdb.DuckDBPyConnection, mine: str, searched: int, merged: int) -> int:
    """Replace the links of the persons ``mine`` selects (``account_links_before``) by those
    found again from the ``searched`` persons of ``account_night_persons`` and those handed on
    by the ``merged`` persons of ``account_merged``; the persons with two linked account nodes."""
    if searched:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE account_night_nodes AS SELECT * FROM identity_nodes "
            "WHERE person_id IN (SELECT person_id FROM account_night_persons)"
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE account_links_after AS "
        + (
            SELECT_ACCOUNT_LINKS.format(nodes="account_night_nodes")
            if searched
            else "FROM account_links LIMIT 0"
        )
    )
    if merged:  # a merged person's links go to the person it joined
        con.execute(MERGED_LINKS)
    # Replaced whether or not they changed: comparing the two sets cost more than the rewrite.
    paired = scalar(con, LINK_CHANGES)
    con.execute(f"DELETE FROM account_links WHERE {mine}")
    con.execute("INSERT INTO account_links FROM account_links_after")
    return paired


LINK_CHANGES = """
SELECT count(*) FROM (
    SELECT person_id FROM account_links_before GROUP BY person_id
    HAVING count(DISTINCT (node_type, node_id)) > 1
    UNION ALL SELECT person_id FROM account_links_after GROUP BY person_id
    HAVING count(DISTINCT (node_type, node_id)) > 1)
"""


def _snapshot_accounts(con: duckdb.DuckDBPyConnection) -> None:
    """Keep the accounts as they were, to find afterwards whose touchpoints they change."""
    con.execute("CREATE OR REPLACE TEMP TABLE night_account_nodes AS FROM account_nodes")
    con.execute("CREATE OR REPLACE TEMP TABLE night_person_accounts AS FROM person_accounts")


# Persons whose touchpoints carry another account now: their periods changed, or an account
# node one of their events names changed id (or appeared, or went). The events are searched only
# when such a node exists: most nights none does.
ACCOUNT_NODE_CHANGES = """
CREATE OR REPLACE TEMP TABLE night_account_node_changes AS
(SELECT node_type, node_id, account_id FROM account_nodes
 EXCEPT SELECT node_type, node_id, account_id FROM night_account_nodes)
UNION ALL (SELECT node_type, node_id, account_id FROM night_account_nodes
           EXCEPT SELECT node_type, node_id, account_id FROM account_nodes)
"""
PERIOD_CHANGES = """
INSERT INTO stitch_account_moved
SELECT person_id FROM (
    (FROM person_accounts EXCEPT FROM night_person_accounts)
    UNION ALL (FROM night_person_accounts EXCEPT FROM person_accounts)
)
"""
NODE_CHANGES = """
INSERT INTO stitch_account_moved
SELECT n.person_id FROM raw_events e
JOIN night_account_node_changes d ON d.node_type = e.account_type AND d.node_id = e.account_value
JOIN identity_nodes n ON n.node_type = e.id_type AND n.node_id = e.id_value
"""


def _record_account_changes(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(PERIOD_CHANGES)
    if scalar(con, ACCOUNT_NODE_CHANGES):  # the rows it made
        con.execute(NODE_CHANGES)
    con.execute(
        "INSERT INTO stitch_moved_persons SELECT DISTINCT person_id FROM stitch_account_moved "
        "EXCEPT SELECT person_id FROM stitch_moved_persons"
    )
    for table in ("night_account_nodes", "night_person_accounts", "night_account_node_changes"):
        con.execute(f"DROP TABLE {table}")
