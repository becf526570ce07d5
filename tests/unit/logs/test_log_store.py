"""The log store and the CloudWatch Logs actions over it: paging tokens, ordering, caps, persistence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zeroserve.errors import ResourceNotFound, ValidationError
from zeroserve.logs.actions import LogsApi
from zeroserve.logs.log_store import LogStore
from zeroserve.logs.log_writer import EVENT_OVERHEAD_BYTES, MAX_EVENT_BYTES
from zeroserve.logs.sink import TRAINING_JOBS_GROUP, LogSink

GROUP, STREAM = TRAINING_JOBS_GROUP, "job/algo-1-1700000000"
NOW_S = 1_800_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    opened = LogStore(tmp_path / "logs.sqlite3", clock=lambda: NOW_S, batch_window_s=0.01)
    yield opened
    opened.close()


@pytest.fixture
def api(store: LogStore) -> LogsApi:
    return LogsApi(store, region="us-east-1", account_id="000000000000")


def lines(count: int, start_ms: int = 1000) -> list[tuple[int, str]]:
    return [(start_ms + i, f"line {i}") for i in range(count)]


def get(api: LogsApi, **params: Any) -> dict[str, Any]:
    return api.handle("GetLogEvents", {"logGroupName": GROUP, "logStreamName": STREAM, **params})


def messages(answer: dict[str, Any]) -> list[str]:
    return [event["message"] for event in answer["events"]]


def test_the_store_is_a_log_sink(store: LogStore) -> None:
    sink: LogSink = store
    sink.put(GROUP, STREAM, [(1, "x")])
    assert store.group(GROUP) is not None


def test_groups_and_streams_are_created_by_their_first_event_with_cloudwatch_counters(
    store: LogStore, api: LogsApi
) -> None:
    store.put(GROUP, STREAM, [(1000, "a"), (1500, "bb")])
    store.put(GROUP, STREAM, [(2000, "ccc")])
    [group] = api.handle("DescribeLogGroups", {})["logGroups"]
    assert group["logGroupName"] == GROUP
    assert group["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{GROUP}:*"
    [stream] = api.handle("DescribeLogStreams", {"logGroupName": GROUP})["logStreams"]
    assert stream["logStreamName"] == STREAM
    assert stream["firstEventTimestamp"] == 1000
    assert stream["lastEventTimestamp"] == 2000
    assert stream["lastIngestionTime"] == int(NOW_S * 1000)
    assert stream["storedBytes"] == group["storedBytes"] == 6 + 3 * EVENT_OVERHEAD_BYTES


def test_get_log_events_from_head_pages_forward_until_the_token_repeats(
    store: LogStore, api: LogsApi
) -> None:
    store.put(GROUP, STREAM, lines(25))
    seen: list[str] = []
    answer = get(api, startFromHead=True, limit=10)
    pages = 1
    while True:
        seen += messages(answer)
        following = get(api, nextToken=answer["nextForwardToken"], limit=10)
        pages += 1
        if following["nextForwardToken"] == answer["nextForwardToken"]:
            assert following["events"] == []
            break
        answer = following
    assert seen == [f"line {i}" for i in range(25)]
    assert pages == 4  # 10 + 10 + 5, then the empty page that repeats the token


def test_without_a_token_the_newest_events_come_back_and_backward_tokens_walk_to_the_start(
    store: LogStore, api: LogsApi
) -> None:
    store.put(GROUP, STREAM, lines(25))
    answer = get(api, limit=10)
    assert messages(answer) == [f"line {i}" for i in range(15, 25)]
    older = get(api, nextToken=answer["nextBackwardToken"], limit=10)
    assert messages(older) == [f"line {i}" for i in range(5, 15)]
    oldest = get(api, nextToken=older["nextBackwardToken"], limit=10)
    assert messages(oldest) == [f"line {i}" for i in range(5)]
    end = get(api, nextToken=oldest["nextBackwardToken"], limit=10)
    assert end["events"] == []
    assert end["nextBackwardToken"] == oldest["nextBackwardToken"]
    # And forward again from the oldest page: the next ten after it.
    assert messages(get(api, nextToken=oldest["nextForwardToken"], limit=10)) == [
        f"line {i}" for i in range(5, 15)
    ]


def test_a_forward_token_at_the_end_sees_lines_that_arrive_later(store: LogStore, api: LogsApi) -> None:
    store.put(GROUP, STREAM, lines(3))
    answer = get(api, startFromHead=True)
    assert get(api, nextToken=answer["nextForwardToken"])["events"] == []
    store.put(GROUP, STREAM, [(5000, "late line")])
    assert messages(get(api, nextToken=answer["nextForwardToken"])) == ["late line"]


def test_start_and_end_time_bound_events_start_inclusive_end_exclusive(store: LogStore, api: LogsApi) -> None:
    store.put(GROUP, STREAM, lines(10))
    answer = get(api, startTime=1003, endTime=1006, startFromHead=True)
    assert messages(answer) == ["line 3", "line 4", "line 5"]


def test_an_event_older_than_the_stream_is_kept_in_arrival_order(store: LogStore, api: LogsApi) -> None:
    store.put(GROUP, STREAM, [(2000, "first")])
    store.put(GROUP, STREAM, [(1000, "second, stamped earlier")])
    answer = get(api, startFromHead=True)
    assert messages(answer) == ["first", "second, stamped earlier"]
    assert [event["timestamp"] for event in answer["events"]] == [2000, 2000]


def test_events_of_one_batch_are_ordered_by_timestamp(store: LogStore, api: LogsApi) -> None:
    store.put(GROUP, STREAM, [(3000, "c"), (1000, "a"), (2000, "b")])
    assert messages(get(api, startFromHead=True)) == ["a", "b", "c"]


def test_missing_group_and_stream_are_resource_not_found(store: LogStore, api: LogsApi) -> None:
    with pytest.raises(ResourceNotFound, match=r"The specified log group does not exist\."):
        api.handle("DescribeLogStreams", {"logGroupName": "/nope"})
    store.put(GROUP, STREAM, [(1, "x")])
    with pytest.raises(ResourceNotFound, match=r"The specified log stream does not exist\."):
        api.handle("GetLogEvents", {"logGroupName": GROUP, "logStreamName": "nope"})


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        ("GetLogEvents", {"logGroupName": GROUP, "logStreamName": STREAM, "limit": 0}, "at 'limit'"),
        ("GetLogEvents", {"logGroupName": GROUP}, "at 'logStreamName'"),
        ("GetLogEvents", {"logStreamName": STREAM}, "Either logGroupName or logGroupIdentifier"),
        ("GetLogEvents", {"logGroupName": GROUP, "logStreamName": STREAM, "nextToken": "junk"}, "nextToken"),
        ("DescribeLogGroups", {"logGroupNamePrefix": "bad name!"}, "regular expression"),
        ("DescribeLogStreams", {"logGroupName": GROUP, "orderBy": "Size"}, "enum value set"),
        (
            "DescribeLogStreams",
            {"logGroupName": GROUP, "orderBy": "LastEventTime", "logStreamNamePrefix": "job"},
            "Cannot order by LastEventTime",
        ),
        ("FilterLogEvents", {"logGroupName": GROUP, "filterPattern": "{ $.level = 1 }"}, "term filter"),
        (
            "FilterLogEvents",
            {"logGroupName": GROUP, "logStreamNames": [STREAM], "logStreamNamePrefix": "j"},
            "mutually exclusive",
        ),
        ("FilterLogEvents", {"logGroupName": GROUP, "nextToken": "junk"}, "nextToken"),
    ],
)
def test_bad_parameters_are_validation_errors(
    store: LogStore, api: LogsApi, action: str, params: dict[str, Any], message: str
) -> None:
    store.put(GROUP, STREAM, [(1, "x")])
    with pytest.raises(ValidationError, match=message):
        api.handle(action, params)


def test_describe_log_streams_pages_by_name_and_orders_by_last_event(store: LogStore, api: LogsApi) -> None:
    for index, name in enumerate(["c", "a", "b"]):
        store.put(GROUP, name, [(1000 * (index + 1), name)])
    first = api.handle("DescribeLogStreams", {"logGroupName": GROUP, "limit": 2})
    assert [s["logStreamName"] for s in first["logStreams"]] == ["a", "b"]
    rest = api.handle(
        "DescribeLogStreams", {"logGroupName": GROUP, "limit": 2, "nextToken": first["nextToken"]}
    )
    assert [s["logStreamName"] for s in rest["logStreams"]] == ["c"]
    assert "nextToken" not in rest
    newest_first = api.handle(
        "DescribeLogStreams", {"logGroupName": GROUP, "orderBy": "LastEventTime", "descending": True}
    )
    assert [s["logStreamName"] for s in newest_first["logStreams"]] == ["b", "a", "c"]
    assert "nextToken" not in api.handle("DescribeLogStreams", {"logGroupName": GROUP, "limit": 3})


def test_describe_log_groups_by_prefix_and_pattern(store: LogStore, api: LogsApi) -> None:
    for group in ["/aws/sagemaker/Endpoints/a", "/aws/sagemaker/Endpoints/b", GROUP]:
        store.put(group, "s", [(1, "x")])
    by_prefix = api.handle(
        "DescribeLogGroups", {"logGroupNamePrefix": "/aws/sagemaker/Endpoints/", "limit": 1}
    )
    assert [g["logGroupName"] for g in by_prefix["logGroups"]] == ["/aws/sagemaker/Endpoints/a"]
    page = api.handle(
        "DescribeLogGroups",
        {"logGroupNamePrefix": "/aws/sagemaker/Endpoints/", "limit": 1, "nextToken": by_prefix["nextToken"]},
    )
    assert [g["logGroupName"] for g in page["logGroups"]] == ["/aws/sagemaker/Endpoints/b"]
    by_pattern = api.handle("DescribeLogGroups", {"logGroupNamePattern": "trainingjobs"})
    assert [g["logGroupName"] for g in by_pattern["logGroups"]] == [GROUP]


def test_filter_log_events_interleaves_streams_matches_terms_and_pages(store: LogStore, api: LogsApi) -> None:
    store.put(GROUP, "job/a", [(1000, "epoch 1 loss=0.5"), (3000, "epoch 2 loss=0.3"), (5000, "DEBUG epoch")])
    store.put(GROUP, "job/b", [(2000, "epoch 1 loss=0.6"), (4000, "warning: slow")])
    store.put(GROUP, "other", [(1500, "epoch 9 loss=0.1")])
    params: dict[str, Any] = {
        "logGroupName": GROUP,
        "logStreamNamePrefix": "job/",
        "filterPattern": "epoch -DEBUG",
    }
    first = api.handle("FilterLogEvents", {**params, "limit": 2})
    assert [(e["logStreamName"], e["message"]) for e in first["events"]] == [
        ("job/a", "epoch 1 loss=0.5"),
        ("job/b", "epoch 1 loss=0.6"),
    ]
    assert {s["logStreamName"] for s in first["searchedLogStreams"]} == {"job/a", "job/b"}
    rest = api.handle("FilterLogEvents", {**params, "limit": 2, "nextToken": first["nextToken"]})
    assert [e["message"] for e in rest["events"]] == ["epoch 2 loss=0.3"]
    assert "nextToken" not in rest
    with pytest.raises(ValidationError, match="does not belong"):
        api.handle("FilterLogEvents", {**params, "filterPattern": "x", "nextToken": first["nextToken"]})
    either = api.handle("FilterLogEvents", {"logGroupName": GROUP, "filterPattern": '?warning ?"loss=0.1"'})
    assert [e["message"] for e in either["events"]] == ["epoch 9 loss=0.1", "warning: slow"]
    ids = [e["eventId"] for e in api.handle("FilterLogEvents", {"logGroupName": GROUP})["events"]]
    assert len(set(ids)) == 6
    assert ids == [e["eventId"] for e in api.handle("FilterLogEvents", {"logGroupName": GROUP})["events"]]


def test_a_group_over_its_cap_loses_its_oldest_events_and_others_keep_theirs(tmp_path: Path) -> None:
    per_event = len("line 00") + EVENT_OVERHEAD_BYTES
    store = LogStore(tmp_path / "logs.sqlite3", max_group_bytes=100 * per_event, batch_window_s=0.01)
    api = LogsApi(store, region="us-east-1", account_id="0")
    try:
        store.put("/other", "s", [(1, "kept")])
        for batch in range(5):
            store.put(GROUP, STREAM, [(batch * 100 + i, f"line {i:02d}") for i in range(50)])
        answer = get(api, startFromHead=True)
        assert 80 <= len(answer["events"]) <= 100
        assert answer["events"][-1]["timestamp"] == 449  # the newest survive
        [stream] = api.handle("DescribeLogStreams", {"logGroupName": GROUP})["logStreams"]
        assert stream["storedBytes"] == len(answer["events"]) * per_event
        assert messages(api.handle("GetLogEvents", {"logGroupName": "/other", "logStreamName": "s"})) == [
            "kept"
        ]
    finally:
        store.close()


def test_the_whole_store_has_a_cap_too(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.sqlite3", max_total_bytes=10_000, batch_window_s=0.01)
    try:
        for group in range(20):
            store.put(f"/g{group}", "s", [(i, "x" * 74) for i in range(10)])  # 1,000 bytes a group
        store.flush()
        assert sum(g.stored_bytes for g in store.groups(limit=50)) <= 10_000
        assert store.groups(prefix="/g19")[0].stored_bytes == 1000  # the newest group is whole
    finally:
        store.close()


def test_a_message_over_the_event_limit_is_cut_to_it(store: LogStore, api: LogsApi) -> None:
    store.put(GROUP, STREAM, [(1, "é" * MAX_EVENT_BYTES)])
    [event] = get(api)["events"]
    assert len(event["message"].encode()) <= MAX_EVENT_BYTES


def test_events_survive_a_reopen_and_positions_carry_on(tmp_path: Path) -> None:
    path = tmp_path / "logs.sqlite3"
    first = LogStore(path, batch_window_s=0.01)
    first.put(GROUP, STREAM, lines(3))
    first.close()  # writes what is queued
    again = LogStore(path, batch_window_s=0.01)
    try:
        api = LogsApi(again, region="us-east-1", account_id="0")
        answer = get(api, startFromHead=True)
        assert messages(answer) == ["line 0", "line 1", "line 2"]
        again.put(GROUP, STREAM, [(500, "after restart")])  # older stamp: kept after the old newest
        follow = get(api, nextToken=answer["nextForwardToken"])
        assert messages(follow) == ["after restart"]
        assert follow["events"][0]["timestamp"] == 1002
    finally:
        again.close()
