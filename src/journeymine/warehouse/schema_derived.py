"""The derived layers' tables, declared once: identity, the canonical touchpoints, mining and
analyses. The modules that own them create them (docs/warehouse.md says which run rebuilds
what); ``schema.WAREHOUSE`` puts these beside the raw layer, and ``schema.conform`` holds a
table to its declaration. The SQL types are the ones a run of the sample produces."""

from __future__ import annotations

import pyarrow as pa

from journeymine.warehouse.columns import Column, Table, col

BIG, INT, TEXT, BOOL = "BIGINT", "INTEGER", "VARCHAR", "BOOLEAN"
TIME = "TIMESTAMPTZ"
RUN_ID = col("run_id", TEXT, "the load run that wrote the row")


def _link() -> tuple[Column, ...]:
    """The two identity nodes a link joins."""
    return (
        col("src_type", TEXT, "identity node type at one end"),
        col("src_id", TEXT, "identity node value at one end"),
        col("dst_type", TEXT, "identity node type at the other end"),
        col("dst_id", TEXT, "identity node value at the other end"),
    )


# The identity state the loader keeps across runs (created with the raw layer, schema.TABLES).
IDENTITY_NODES = (
    col("node_type", TEXT, "identity node type"),
    col("node_id", TEXT, "identity node value"),
    col("person_id", BIG, "the person it belongs to (stable across runs)"),
    col("first_assigned_at", TIME, "when it first got that person"),
)
PERSON_MERGES = (
    col("merged_person_id", BIG, "a person id absorbed"),
    col("into_person_id", BIG, "the id that absorbed it"),
    col("merged_at", TIME, "when"),
    RUN_ID,
)
ACCOUNT_NODES = (
    col("node_type", TEXT, "account identifier type"),
    col("node_id", TEXT, "account identifier value"),
    col("account_id", BIG, "the account it belongs to (stable)"),
    col("first_assigned_at", TIME, "when it first got that account"),
)
IDENTITY_EDGES = (
    *_link(),
    col("source", TEXT, "the source whose records state the link"),
    col("rule", TEXT, "why the records link them (docs/identity.md)"),
    col("observed_at", TIME, "the first time a record said so"),
    col("observations", BIG, "how many records state it"),
)
ACCOUNT_EVIDENCE = (
    *_link(),
    col("rule", TEXT, "what joins them: the rule, or shared_person"),
    col("persons", BIG, "persons who share the two identifiers"),
    col("example_person", BIG, "one of those persons"),
    col("observed_at", TIME, "when the evidence was first seen"),
    col("refused", BOOL, "the merge policy kept the two apart"),
    col("reason", TEXT, "why it was refused (null when kept)"),
    col("kept_apart_by", TEXT, "the setting that refused it"),
)
IDENTITY = (
    Table(
        "identity_nodes",
        "identity",
        "one identifier (`user_id`, `email`, `anonymous_id`, ...) and the person it belongs to",
        IDENTITY_NODES,
    ),
    Table(
        "identity_edges",
        "identity",
        "one distinct link of `raw_edges`, with how often it was seen",
        IDENTITY_EDGES,
        view=True,
    ),
    Table(
        "identity_conflicts",
        "identity",
        "one link the merge policy refused, and why",
        (
            *_link(),
            col("rule", TEXT, "the rule of the refused link"),
            col("source", TEXT, "the source that stated it"),
            col("observed_at", TIME, "when it was first stated"),
            col("reason", TEXT, "why it was refused, in a sentence"),
            col("kept_apart_by", TEXT, "the setting that refused it (max_user_ids_per_person=1)"),
            col("other_setting_merges", BOOL, "the other setting would have merged the two"),
        ),
    ),
    Table(
        "identity_edges_stored",
        "identity",
        "`identity_edges` as of the last stitch: an incremental night adds its own links to it "
        "instead of aggregating every raw edge again",
        IDENTITY_EDGES,
    ),
    Table(
        "identity_components",
        "identity",
        "one connected component of person identifiers (before the cap): what the other "
        "`max_user_ids_per_person` setting would make of it, kept so a night recomputes only "
        "the components it reaches",
        (
            col("component", BIG, "the component's id"),
            col("other_setting_persons", BIG, "persons it makes under the other setting"),
            col("other_setting_would_refuse", BIG, "its links the other setting refuses"),
        ),
    ),
    Table(
        "identity_component_joins",
        "identity",
        "one component and rule: how many links joined persons in it (`identity_joins` sums them)",
        (
            col("component", BIG, "the component's id"),
            col("rule", TEXT, "the link rule"),
            col("joins", BIG, "links of that rule that joined two persons"),
        ),
    ),
    Table(
        "identity_joins",
        "identity",
        "one entity and rule: how many links joined persons",
        (
            col("entity", TEXT, "person or account"),
            col("rule", TEXT, "the link rule"),
            col("joins", BIG, "links of that rule that joined two clusters"),
        ),
    ),
    Table(
        "identity_policy",
        "identity",
        "the merge policy of the last load, and what the other setting would have done",
        (
            col("max_user_ids_per_person", INT, "the cap used tonight"),
            col("match_on_email", BOOL, "whether an email joins persons tonight"),
            col("refused_pairs", BIG, "links refused tonight (rows of identity_conflicts)"),
            col("other_setting", INT, "the cap compared with"),
            col("other_setting_would_merge", BIG, "refused pairs the other setting merges"),
            col("other_setting_would_refuse", BIG, "links it refuses that are one person tonight"),
            col("other_setting_persons", BIG, "persons under the other setting"),
        ),
    ),
    Table(
        "person_merges",
        "identity",
        "one person id merged into another (ids stay stable otherwise)",
        PERSON_MERGES,
    ),
    Table(
        "persons",
        "identity",
        "one stitched person",
        (
            col("person_id", BIG, "the person (stable across runs)"),
            col("first_seen", TIME, "their first touchpoint"),
            col("last_seen", TIME, "their last touchpoint"),
            col("events", BIG, "their touchpoints"),
            col("account_id", BIG, "their current account, if any"),
            Column(
                "identifiers",
                pa.list_(pa.struct([("type", pa.string()), ("id", pa.string())])),
                'STRUCT("type" VARCHAR, id VARCHAR)[]',
                "their identity nodes (type, id)",
            ),
        ),
    ),
    Table(
        "account_nodes",
        "identity",
        "one account identifier (Segment group, Salesforce Account, Stripe customer) and its "
        "account",
        ACCOUNT_NODES,
    ),
    Table(
        "account_links",
        "identity",
        "one person's link to an account identifier",
        (
            col("person_id", BIG, "the person"),
            col("node_type", TEXT, "account identifier type"),
            col("node_id", TEXT, "account identifier value"),
            col("rule", TEXT, "the rule that links them"),
            col("observed_at", TIME, "when a record first said so"),
        ),
    ),
    Table(
        "account_evidence",
        "identity",
        "one piece of evidence joining two account identifiers, kept or refused",
        ACCOUNT_EVIDENCE,
    ),
    Table(
        "account_conflicts",
        "identity",
        "the refused rows of `account_evidence`",
        ACCOUNT_EVIDENCE,
        view=True,
    ),
    Table(
        "account_merges",
        "identity",
        "one account id merged into another",
        (
            col("merged_account_id", BIG, "an account id absorbed"),
            col("into_account_id", BIG, "the id that absorbed it"),
            col("merged_at", TIME, "when"),
            RUN_ID,
        ),
    ),
    Table(
        "person_accounts",
        "identity",
        "one person's membership of an account over a period",
        (
            col("person_id", BIG, "the person"),
            col("account_id", BIG, "the account"),
            col("valid_from", TIME, "start of the membership"),
            col("valid_to", TIME, "its end (null: still a member)"),
        ),
    ),
)

CANONICAL = (
    Table(
        "touchpoints",
        "canonical",
        "one canonical event, stored sorted by `(person_id, occurred_at, seq)`",
        (
            col("event_id", BIG, "surrogate key of the touchpoint, stable for a given warehouse"),
            col("person_id", BIG, "stitched person (see `persons`)"),
            col("account_id", BIG, "stitched account, when the person belongs to one"),
            col("deal_id", TEXT, "Salesforce opportunity id (18 chars) for deal-level events"),
            col("source", TEXT, "segment, ga4, sendgrid, salesforce, stripe, zendesk, ..., log"),
            col("event_type", TEXT, "the vendor's own name for the event"),
            col("activity", TEXT, "canonical activity (docs/activities.md)"),
            col("actor", TEXT, "`customer` or `company`"),
            col("occurred_at", TIME, "when it happened, UTC"),
            col("seq", BIG, "load order (file, then line): breaks ties of equal `occurred_at`"),
            col("channel", TEXT, "web, email, crm, billing, support, survey (null for a log)"),
            col("owner", TEXT, "company-side owner (Salesforce user id, email campaign)"),
            col("owner_name", TEXT, "the owner's name when an export names it, else `owner`"),
            col("attributes", "JSON", "event attributes (UTM tags, page path, plan, amount, ...)"),
            col("file", TEXT, "lineage: the landing file it came from"),
            col("line", INT, "lineage: its line in that file"),
        ),
    ),
)
