"""One parser per vendor export, registered under its landing folder's name.

``PARSERS`` is the loader's only list of sources (in load order); ``TOUCHPOINT_FIXUPS`` are what a
source needs run on ``touchpoints`` after each rebuild (each returns the person id of every row it
changed), so that the canonical layer need not know any vendor.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from journeymine.ingest.sources import (
    ga4,
    salesforce,
    segment,
    sendgrid,
    stripe,
    survey,
    typeform,
    zendesk,
    zendesk_replies,
)
from journeymine.ingest.sources._common import ParsedFile

PARSERS: dict[str, Callable[..., ParsedFile]] = {
    "segment": segment.parse_file,
    "ga4": ga4.parse_file,
    "sendgrid": sendgrid.parse_file,
    "salesforce": salesforce.parse_file,
    "stripe": stripe.parse_file,
    "zendesk": zendesk.parse_file,
    "typeform": typeform.parse_file,
    "survey": survey.parse_file,
}
# A reply whose author a later users page names gets its actor.
TOUCHPOINT_FIXUPS: tuple[Callable[[duckdb.DuckDBPyConnection], list[int]], ...] = (
    zendesk_replies.resolve_reply_authors,
)
