"""Segment: raw calls as JSON lines (S3/warehouse destination dumps, plain or .gz).

* one call per line: ``type`` is ``track``, ``identify``, ``page``, ``screen``, ``alias``,
  ``group``; other types are kept under their raw name (``web.call:<type>``);
* dedup key ``messageId`` (Segment retries deliver the same message again);
* time ``timestamp`` ISO-8601, may carry a local offset (``+02:00``); stored in UTC, the raw
  string kept in ``raw_time``;
* the person is ``userId`` when set, else ``anonymousId``; a call with neither is rejected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from journeymine.sources._common import (
    ANONYMOUS_ID,
    CUSTOMER,
    EMAIL,
    SEGMENT_GROUP,
    USER_ID,
    Edge,
    Event,
    ParsedFile,
    RawRow,
    RecordError,
    iter_json_lines,
    normalise_email,
    parse_iso,
    parse_records,
    slug,
)

SOURCE = "segment"
MESSAGE_ID = "messageId"
TIMESTAMP = "timestamp"
USER = "userId"
ANONYMOUS = "anonymousId"
CAMPAIGN_FIELDS = {
    "source": "utm_source",
    "medium": "utm_medium",
    "name": "utm_campaign",
    "term": "utm_term",
    "content": "utm_content",
}
PAGE_FIELDS = ("path", "title", "url", "referrer", "search")
PERSONAL_TRAITS = {"email", "name", "first_name", "last_name", "firstName", "lastName", "phone"}


def path_group(path: str | None) -> str:
    """``/blog/how-to?x=1`` -> ``/blog``; home and unknown -> ``/``."""
    if not path:
        return "/"
    parts = [p for p in urlparse(path).path.split("/") if p]
    return "/" + parts[0].lower() if parts else "/"


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _scalars(values: object, skip: set[str] = set()) -> dict[str, Any]:  # noqa: B006
    if not isinstance(values, dict):
        return {}
    return {
        k: v
        for k, v in values.items()
        if k not in skip and (v is None or isinstance(v, str | int | float | bool))
    }


def _utm(call: dict[str, Any]) -> dict[str, Any]:
    context = call.get("context")
    campaign = context.get("campaign") if isinstance(context, dict) else None
    if not isinstance(campaign, dict):
        return {}
    return {out: campaign[key] for key, out in CAMPAIGN_FIELDS.items() if campaign.get(key)}


def _activity(call: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    props = _dict(call.get("properties"))
    if kind == "page":
        attrs = {k: props[k] for k in PAGE_FIELDS if props.get(k) is not None}
        group = path_group(props.get("path") or props.get("url"))
        return f"web.page_view:{group}", {**attrs, "path_group": group, "name": call.get("name")}
    if kind == "screen":
        return "web.screen_view", {"name": call.get("name"), **_scalars(props)}
    if kind == "track":
        name = call.get("event")
        if not isinstance(name, str) or not name.strip():
            raise RecordError("track: missing event name")
        return f"web.{slug(name)}", {"event": name, **_scalars(props)}
    if kind == "identify":
        return "web.identified", _scalars(call.get("traits"), PERSONAL_TRAITS)
    return f"web.call:{kind}", {}


def parse_call(line: int, text: str, call: object) -> RawRow:
    """One Segment call -> its row, event (if the call is a touchpoint) and identity edges."""
    if not isinstance(call, dict):
        raise RecordError("not a JSON object")
    message_id = call.get(MESSAGE_ID)
    if not message_id:
        raise RecordError("missing messageId")
    kind = str(call.get("type") or "").strip().lower()
    if not kind:
        raise RecordError("missing type")
    at = parse_iso(call.get(TIMESTAMP), TIMESTAMP)
    user, anon = call.get(USER) or None, call.get(ANONYMOUS) or None
    if not user and not anon:
        raise RecordError("missing userId and anonymousId")
    person = (USER_ID, str(user)) if user else (ANONYMOUS_ID, str(anon))
    row = RawRow(line, str(message_id), text)
    if user and anon:
        row.edges.append(Edge(ANONYMOUS_ID, str(anon), USER_ID, str(user), f"segment_{kind}", at))
    if kind == "alias" and call.get("previousId") and user:
        row.edges.append(
            Edge(ANONYMOUS_ID, str(call["previousId"]), USER_ID, str(user), "segment_alias", at)
        )
    traits = _dict(call.get("traits"))
    email = normalise_email(traits.get("email")) if kind == "identify" else None
    if email:
        row.edges.append(Edge(*person, EMAIL, email, "segment_identify_email", at))
    if kind == "group" and call.get("groupId"):
        row.edges.append(Edge(*person, SEGMENT_GROUP, str(call["groupId"]), "segment_group", at))
    if kind in ("alias", "group"):
        return row
    activity, attributes = _activity(call, kind)
    attributes = {k: v for k, v in {**attributes, **_utm(call)}.items() if v is not None}
    row.events.append(
        Event(
            event_key=str(message_id),
            event_type=kind,
            activity=activity,
            actor=CUSTOMER,
            occurred_at=at,
            raw_time=str(call.get(TIMESTAMP)),
            id_type=person[0],
            id_value=person[1],
            channel="web",
            attributes=attributes,
        )
    )
    return row


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse one file of Segment calls (JSON lines, plain or .gz)."""
    return parse_records(SOURCE, file, iter_json_lines(path), parse_call, "Segment JSON lines")
