"""The canonical layer: ``touchpoints`` (one event per row, stitched) and ``persons``.

``touchpoints`` is rebuilt from the raw layer after every load, stored sorted by
``(person_id, occurred_at, seq)`` so that per-person window functions read it in order
(DESIGN §7). When a record arrives in several versions (a Salesforce export of a changed
Lead), the event from the newest version wins: the version its record key names
(``Id@SystemModstamp``), else the one loaded last — so an older export loaded later never
overwrites a newer record.
"""

from __future__ import annotations

import duckdb

from journeymine.sources._common import SF_OPPORTUNITY

TOUCHPOINTS = f"""
CREATE OR REPLACE TABLE touchpoints AS
WITH latest AS (  -- the newest version of a record wins, whatever order the files came in
    SELECT e.* FROM raw_events e LEFT JOIN raw_rows r USING (source, file, line)
    QUALIFY row_number() OVER (
        PARTITION BY e.source, e.event_key
        ORDER BY TRY_CAST(nullif(split_part(r.record_key, '@', 2), '') AS TIMESTAMPTZ)
                     DESC NULLS LAST,
                 e.seq DESC) = 1
)
SELECT e.seq AS event_id, n.person_id, coalesce(acc.account_id, pa.account_id) AS account_id,
       CASE WHEN e.id_type = '{SF_OPPORTUNITY}' THEN e.id_value END AS deal_id,
       e.source, e.event_type, e.activity, e.actor, e.occurred_at, e.seq, e.channel, e.owner,
       coalesce(o.name, e.owner) AS owner_name, e.attributes, e.file, e.line
FROM latest e
LEFT JOIN (SELECT id, arg_max(name, line) AS name FROM raw_labels WHERE kind = 'owner'
           GROUP BY id) o ON o.id = e.owner
JOIN identity_nodes n ON n.node_type = e.id_type AND n.node_id = e.id_value
LEFT JOIN account_nodes acc
       ON acc.node_type = e.account_type AND acc.node_id = e.account_value
LEFT JOIN person_accounts pa ON pa.person_id = n.person_id  -- the account of the time
      AND (pa.valid_from IS NULL OR e.occurred_at >= pa.valid_from)
      AND (pa.valid_to IS NULL OR e.occurred_at < pa.valid_to)
ORDER BY n.person_id, e.occurred_at, e.seq
"""

PERSONS = """
CREATE OR REPLACE TABLE persons AS
WITH ids AS (
    SELECT person_id, list({'type': node_type, 'id': node_id} ORDER BY node_type, node_id)
           AS identifiers
    FROM identity_nodes GROUP BY person_id
), activity AS (
    SELECT person_id, min(occurred_at) AS first_seen, max(occurred_at) AS last_seen,
           count(*) AS events
    FROM touchpoints GROUP BY person_id
)
SELECT i.person_id, a.first_seen, a.last_seen, coalesce(a.events, 0) AS events,
       pa.account_id, i.identifiers
FROM ids i LEFT JOIN activity a USING (person_id)
LEFT JOIN (SELECT person_id, account_id FROM person_accounts WHERE valid_to IS NULL) pa
       USING (person_id)  -- the current account
ORDER BY i.person_id
"""


def build(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild ``touchpoints`` and ``persons``; return the number of touchpoints."""
    con.execute(TOUCHPOINTS)
    con.execute(PERSONS)
    row = con.execute("SELECT count(*) FROM touchpoints").fetchone()
    return int(row[0]) if row else 0
