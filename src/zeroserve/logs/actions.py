"""CloudWatch Logs actions over the LogStore: one method per action, params in, response dict out.

Requests are validated against botocore's `logs` model first. Paging follows CloudWatch:
- GetLogEvents gives `nextForwardToken` (after the last event returned) and `nextBackwardToken` (before the
  first). A page that finds nothing more hands back the very token it was given, which is how the SDK and
  the CLI know they reached the end. Without a token, `startFromHead` reads from the oldest event; otherwise
  the newest `limit` events come back (still oldest first).
- FilterLogEvents and the Describe* actions return `nextToken` only when more remains; their tokens carry the
  sort key of the last item and a fingerprint of the query, so they cannot be replayed against other filters.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from zeroserve.aws.service_model import LOGS
from zeroserve.aws.validation import validate
from zeroserve.errors import ResourceNotFound, ValidationError
from zeroserve.logs.log_records import END, START, GroupInfo, Position, StoredEvent, StreamInfo
from zeroserve.logs.log_store import LogStore
from zeroserve.logs.log_writer import EVENT_OVERHEAD_BYTES
from zeroserve.logs.pattern import compile_pattern

Params = dict[str, Any]
Document = dict[str, Any]
MAX_PAGE_BYTES = 1024 * 1024  # CloudWatch's cap on one GetLogEvents / FilterLogEvents answer
MAX_EVENTS = 10_000
DESCRIBE_LIMIT = 50
# How many events one FilterLogEvents call looks at before it answers with what matched and a nextToken.
MAX_SCANNED_EVENTS = 100_000
_POSITION_TOKEN = re.compile(r"^([fb])/(\d{20})(\d{20})/s$")


def _position_token(direction: str, at: Position) -> str:
    return f"{direction}/{at[0]:020d}{min(at[1], END[1]):020d}/s"


def _fingerprint(params: Params) -> str:
    query = {k: v for k, v in params.items() if k not in ("nextToken", "limit")}
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]


def _encode_token(key: list[Any], params: Params) -> str:
    data = {"after": key, "q": _fingerprint(params)}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _decode_token(params: Params) -> list[Any] | None:
    token = params.get("nextToken")
    if token is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after, query = data["after"], data["q"]
    except (ValueError, KeyError, TypeError):
        raise ValidationError("The specified nextToken is invalid.") from None
    if not isinstance(after, list) or query != _fingerprint(params):
        raise ValidationError("The specified nextToken does not belong to this query.")
    return after


class LogsApi:
    def __init__(self, store: LogStore, *, region: str, account_id: str) -> None:
        self.store = store
        self.region = region
        self.account_id = account_id
        self.actions: dict[str, Callable[[Params], Document]] = {
            "DescribeLogGroups": self.describe_log_groups,
            "DescribeLogStreams": self.describe_log_streams,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
        }

    def handle(self, action: str, params: Params) -> Document:
        method = self.actions.get(action)
        if method is None:
            raise ValidationError(f"Action {action} is not supported by zeroserve.")
        validate(action, params, LOGS)
        return method(params)

    # --- shared --------------------------------------------------------------------------------------

    def _group_arn(self, name: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{name}"

    def _group(self, params: Params) -> GroupInfo:
        name = params.get("logGroupName")
        identifier = params.get("logGroupIdentifier")
        if name is not None and identifier is not None:
            raise ValidationError("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        if identifier is not None:
            # An ARN (with or without the trailing :*) or a plain name.
            name = identifier.split(":log-group:", 1)[1] if ":log-group:" in identifier else identifier
            name = name.removesuffix(":*")
        if name is None:
            raise ValidationError("Either logGroupName or logGroupIdentifier must be specified.")
        group = self.store.group(name)
        if group is None:
            raise ResourceNotFound("The specified log group does not exist.")
        return group

    def _stream_doc(self, group: GroupInfo, stream: StreamInfo) -> Document:
        doc: Document = {
            "logStreamName": stream.name,
            "creationTime": stream.created_ms,
            "arn": f"{self._group_arn(group.name)}:log-stream:{stream.name}",
            "storedBytes": stream.stored_bytes,
        }
        for member, value in (
            ("firstEventTimestamp", stream.first_event_ms),
            ("lastEventTimestamp", stream.last_event_ms),
            ("lastIngestionTime", stream.last_ingestion_ms),
        ):
            if value is not None:
                doc[member] = value
        return doc

    @staticmethod
    def _window(params: Params) -> tuple[int, int | None]:
        start, end = params.get("startTime", 0), params.get("endTime")
        if end is not None and end < start:
            raise ValidationError("endTime must not be earlier than startTime.")
        return start, end

    # --- actions -------------------------------------------------------------------------------------

    def describe_log_groups(self, params: Params) -> Document:
        prefix = params.get("logGroupNamePrefix", "")
        contains = params.get("logGroupNamePattern", "")
        if prefix and contains:
            raise ValidationError(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."
            )
        if params.get("logGroupIdentifiers"):
            raise ValidationError("zeroserve does not support logGroupIdentifiers; use logGroupNamePrefix.")
        limit = params.get("limit", DESCRIBE_LIMIT)
        after = _decode_token(params)
        found = self.store.groups(
            prefix=prefix, contains=contains, after=str(after[0]) if after else "", limit=limit + 1
        )
        page = found[:limit]
        result: Document = {
            "logGroups": [
                {
                    "logGroupName": group.name,
                    "creationTime": group.created_ms,
                    "metricFilterCount": 0,
                    "arn": f"{self._group_arn(group.name)}:*",
                    "logGroupArn": self._group_arn(group.name),
                    "storedBytes": group.stored_bytes,
                    "logGroupClass": "STANDARD",
                }
                for group in page
            ]
        }
        if len(found) > limit:
            result["nextToken"] = _encode_token([page[-1].name], params)
        return result

    def describe_log_streams(self, params: Params) -> Document:
        group = self._group(params)
        by_last_event = params.get("orderBy", "LogStreamName") == "LastEventTime"
        prefix = params.get("logStreamNamePrefix", "")
        if by_last_event and prefix:
            raise ValidationError("Cannot order by LastEventTime with a logStreamNamePrefix.")
        limit = params.get("limit", DESCRIBE_LIMIT)
        after = _decode_token(params)
        found = self.store.streams(
            group.id,
            prefix=prefix,
            by_last_event=by_last_event,
            descending=params.get("descending", False),
            after=(int(after[0]), str(after[1])) if after else None,
            limit=limit + 1,
        )
        page = found[:limit]
        result: Document = {"logStreams": [self._stream_doc(group, stream) for stream in page]}
        if len(found) > limit:
            last = page[-1]
            key = [last.last_event_ms or 0 if by_last_event else 0, last.name]
            result["nextToken"] = _encode_token(key, params)
        return result

    def get_log_events(self, params: Params) -> Document:
        group = self._group(params)
        stream = self.store.stream(group.id, params["logStreamName"])
        if stream is None:
            raise ResourceNotFound("The specified log stream does not exist.")
        start, end = self._window(params)
        limit = params.get("limit", MAX_EVENTS)
        token = params.get("nextToken")
        if token is not None:
            parsed = _POSITION_TOKEN.match(token)
            if parsed is None:
                raise ValidationError("The specified nextToken is invalid.")
            backward = parsed.group(1) == "b"
            at: Position = (int(parsed.group(2)), int(parsed.group(3)))
        else:
            backward = not params.get("startFromHead", False)
            at = END if backward else START
        events = self.store.events(
            stream.id, start_ms=start, end_ms=end, at=at, backward=backward, limit=limit
        )
        events = _within_bytes(events, from_end=backward)
        if events:
            forward_at, backward_at = events[-1].after, events[0].position
        elif token is not None:
            forward_at = backward_at = at  # nothing more this way: the token repeats
        else:
            forward_at = backward_at = START  # an empty stream: reading forward sees what arrives later
        return {
            "events": [
                {"timestamp": e.timestamp_ms, "message": e.message, "ingestionTime": e.ingestion_ms}
                for e in events
            ],
            "nextForwardToken": _position_token("f", forward_at),
            "nextBackwardToken": _position_token("b", backward_at),
        }

    def filter_log_events(self, params: Params) -> Document:
        group = self._group(params)
        names = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise ValidationError("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
        if names is not None:
            streams = [found for name in dict.fromkeys(names) if (found := self.store.stream(group.id, name))]
            if not streams:
                raise ResourceNotFound("The specified log stream does not exist.")
        else:
            streams = self.store.streams(group.id, prefix=prefix or "", limit=10**9)
        start, end = self._window(params)
        matches = compile_pattern(params.get("filterPattern"))
        limit = params.get("limit", MAX_EVENTS)
        after = _decode_token(params)
        at: Position = (int(after[0]), int(after[1])) if after else START
        by_id = {stream.id: stream for stream in streams}
        events: list[StoredEvent] = []
        size = 0
        more = False
        for scanned, event in enumerate(self.store.scan(list(by_id), start_ms=start, end_ms=end, at=at)):
            if len(events) >= limit or size >= MAX_PAGE_BYTES or scanned >= MAX_SCANNED_EVENTS:
                more = True
                break
            at = event.after
            if matches(event.message):
                events.append(event)
                size += len(event.message.encode()) + EVENT_OVERHEAD_BYTES
        result: Document = {
            "events": [
                {
                    "logStreamName": by_id[e.stream_id].name,
                    "timestamp": e.timestamp_ms,
                    "message": e.message,
                    "ingestionTime": e.ingestion_ms,
                    "eventId": f"{e.id:056d}",
                }
                for e in events
            ],
            "searchedLogStreams": [
                {"logStreamName": stream.name, "searchedCompletely": not more} for stream in streams
            ],
        }
        if more:
            result["nextToken"] = _encode_token(list(at), params)
        return result


def _within_bytes(events: list[StoredEvent], *, from_end: bool) -> list[StoredEvent]:
    """Keep at most MAX_PAGE_BYTES of messages: the oldest ones, or the newest when reading backwards."""
    ordered = reversed(events) if from_end else iter(events)
    kept: list[StoredEvent] = []
    size = 0
    for event in ordered:
        size += len(event.message.encode()) + EVENT_OVERHEAD_BYTES
        if kept and size > MAX_PAGE_BYTES:
            break
        kept.append(event)
    return kept[::-1] if from_end else kept
