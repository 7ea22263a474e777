"""Zendesk's correction of rebuilt touchpoints: who wrote each reply whose author was unknown.

A comment's author is the customer or staff by the author's ``role`` in the page's users; real
exports page users separately, so the author may be in another file or come on a later night.
The parser keeps such a comment as ``support.reply`` with actor ``unknown`` (see
:mod:`.zendesk`); after every touchpoints build this fix-up (``TOUCHPOINT_FIXUPS``) decides
them from the users of every page loaded so far.
"""

from __future__ import annotations

import duckdb

from journeymine.ingest.sources._common import COMPANY, CUSTOMER
from journeymine.ingest.sources.zendesk import (
    END_USER,
    SOURCE,
    STAFF_ROLES,
    UNKNOWN_AUTHOR_ACTIVITY,
)
from journeymine.warehouse import table_names

# The user id of a users page row's record key (``user:<id>@<updated_at>``, see :mod:`.zendesk`).
USER_ID_OF_KEY = "split_part(split_part(record_key, '@', 1), ':', 2)"

# A support.reply's actor, decided from the latest version of its author among the users of
# every loaded page: an end-user's reply is the customer's (sentiment kept), a staff member's
# the company's (its sentiment dropped: staff text is not the customer's voice). A reply whose
# author no page lists stays as parsed. Every reply parsed with its author unknown is decided
# again from its raw event, not only the ones still unknown, so that a later users page that
# changes an author's role changes the replies an earlier night decided, as a full rebuild would.
# {replies} with {where}: the replies to decide (seq, activity, actor, attributes as parsed);
# {users}: a further condition on the users' rows, naming at least their authors.
RESOLVE_REPLIES = f"""
UPDATE touchpoints AS t SET activity = d.activity, actor = d.actor, attributes = d.attributes
FROM (
    WITH roles AS (
        SELECT {USER_ID_OF_KEY} AS user_id,
               arg_max(json_extract_string(raw, '$.role'),
                       TRY_CAST(split_part(record_key, '@', 2) AS TIMESTAMPTZ)) AS role
        FROM raw_rows WHERE source = '{SOURCE}' AND record_key LIKE 'user:%' {{users}}
        GROUP BY 1
    ), replies AS (
        SELECT e.seq, e.activity, e.actor, e.attributes,
               CASE WHEN r.role = '{END_USER}' THEN 'customer'
                    WHEN r.role IN ({", ".join(f"'{r}'" for r in sorted(STAFF_ROLES))}) THEN 'staff'
               END AS author
        FROM {{replies}} e
        LEFT JOIN roles r ON r.user_id = json_extract_string(e.attributes, '$.author_id')
        {{where}}
    )
    SELECT seq,
           CASE author WHEN 'customer' THEN 'support.customer_replied'
                       WHEN 'staff' THEN 'support.agent_replied' ELSE activity END AS activity,
           CASE author WHEN 'customer' THEN '{CUSTOMER}' WHEN 'staff' THEN '{COMPANY}'
                       ELSE actor END AS actor,
           CASE author WHEN 'staff' THEN json_merge_patch(
                    attributes, '{{{{"sentiment": null, "sentiment_label": null}}}}')
                ELSE attributes END AS attributes
    FROM replies
) d
WHERE t.source = '{SOURCE}' AND t.event_id = d.seq
  AND (t.activity IS DISTINCT FROM d.activity OR t.actor IS DISTINCT FROM d.actor
       OR t.attributes::VARCHAR IS DISTINCT FROM d.attributes::VARCHAR)
RETURNING t.person_id
"""
ALL_REPLIES = {
    "replies": "raw_events",
    "where": f"WHERE e.source = '{SOURCE}' AND e.activity = '{UNKNOWN_AUTHOR_ACTIVITY}'",
    "users": "",
}

# On an incremental night (``touchpoints.refresh`` holds the temp tables ``night_touchpoints``,
# the rows it rebuilt or added as parsed, and ``night_raw_rows``), only two kinds of reply can
# change: those among the night's touchpoints, and those whose author tonight's users pages
# name (a new version can change the role). Every other reply keeps what an earlier run decided
# from the same rows. Most nights bring neither: then nothing is read.
NIGHT_REPLIES = f"""
CREATE OR REPLACE TEMP TABLE zendesk_night_replies AS
WITH authors AS (
    SELECT DISTINCT {USER_ID_OF_KEY} AS user_id
    FROM night_raw_rows WHERE source = '{SOURCE}' AND record_key LIKE 'user:%'
), rebuilt AS (
    SELECT event_id AS seq, activity, actor, attributes FROM night_touchpoints
    WHERE source = '{SOURCE}' AND activity = '{UNKNOWN_AUTHOR_ACTIVITY}'
)
FROM rebuilt
"""
# ...and the earlier replies of tonight's users, when tonight brought users pages.
NIGHT_AUTHORS_REPLIES = f"""
UNION ALL
SELECT seq, activity, actor, attributes FROM raw_events
WHERE source = '{SOURCE}' AND activity = '{UNKNOWN_AUTHOR_ACTIVITY}'
  AND json_extract_string(attributes, '$.author_id') IN (SELECT user_id FROM authors)
  AND seq NOT IN (SELECT seq FROM rebuilt)
"""
NIGHT_COUNTS = f"""
SELECT (SELECT count(*) FROM night_touchpoints
        WHERE source = '{SOURCE}' AND activity = '{UNKNOWN_AUTHOR_ACTIVITY}'),
       (SELECT count(*) FROM night_raw_rows WHERE source = '{SOURCE}' AND record_key LIKE 'user:%')
"""
NIGHT_TABLES = ("night_touchpoints", "night_raw_rows")


def resolve_reply_authors(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Decide the actor of every ``support.reply`` whose author some loaded page lists
    (``touchpoints`` and ``raw_rows`` must exist), or during an incremental night only of the
    replies that night can change; the person of each reply decided."""
    if not table_names(con, temporary=True).issuperset(NIGHT_TABLES):  # one read for both
        return _resolve(con, ALL_REPLIES)
    rebuilt, users = con.execute(NIGHT_COUNTS).fetchall()[0]
    if not rebuilt and not users:
        return []
    con.execute(NIGHT_REPLIES + (NIGHT_AUTHORS_REPLIES if users else ""))
    authors = "json_extract_string(attributes, '$.author_id') FROM zendesk_night_replies"
    try:
        return _resolve(
            con,
            {
                "replies": "zendesk_night_replies",
                "where": "",
                "users": f"AND {USER_ID_OF_KEY} IN (SELECT {authors})",
            },
        )
    finally:
        con.execute("DROP TABLE zendesk_night_replies")


def _resolve(con: duckdb.DuckDBPyConnection, parts: dict[str, str]) -> list[int]:
    sql = RESOLVE_REPLIES.format(**parts)
    return [int(person) for (person,) in con.execute(sql).fetchall()]
