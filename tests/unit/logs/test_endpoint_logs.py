"""Endpoint log groups: request log lines and worker events, one stream per variant and server instance."""

from __future__ import annotations

import json
import re
from pathlib import Path

from metric_records import T0_S, record
from zeroserve.logs.endpoint_logs import EndpointLogs, instance_id
from zeroserve.logs.log_store import LogStore
from zeroserve.logs.sink import endpoint_group
from zeroserve.metrics.events import WorkerEvent


def test_request_lines_and_worker_events_land_in_the_endpoint_group(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.sqlite3", batch_window_s=0.01)
    observer = EndpointLogs(store, "i-0123456789abcdef0", clock=lambda: T0_S - 1, batch_window_s=0.01)
    try:
        observer.worker(WorkerEvent("sentiment", "AllTraffic", "started", setup_ms=812.4, rss_mb=210))
        observer.invocation(record(total_ms=4.8))
        observer.invocation(record(variant="Canary"))
        observer.invocation(record(endpoint="other"))
        observer.flush()
        group = store.group(endpoint_group("sentiment"))
        assert group is not None
        streams = {s.name: s for s in store.streams(group.id)}
        assert set(streams) == {"AllTraffic/i-0123456789abcdef0", "Canary/i-0123456789abcdef0"}
        started, request = store.events(streams["AllTraffic/i-0123456789abcdef0"].id)
        assert started.message == "zeroserve worker started setup_ms=812 rss_mb=210"
        assert json.loads(request.message)["status"] == 200
        assert request.timestamp_ms == int(T0_S * 1000 + 4.8)  # when the answer left
        assert store.group(endpoint_group("other")) is not None
    finally:
        observer.close()
        store.close()


def test_instance_ids_look_like_ec2_instance_ids() -> None:
    assert re.fullmatch(r"i-[0-9a-f]{17}", instance_id())
    assert instance_id() != instance_id()


def test_worker_output_lands_in_the_variant_stream_prefixed_with_the_worker_id(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.sqlite3", batch_window_s=0.01)
    observer = EndpointLogs(store, "i-0123456789abcdef0", batch_window_s=0.01)
    try:
        stamp_ms = int(T0_S * 1000)
        observer.worker_output(
            "sentiment", "AllTraffic", "w3", [(stamp_ms, "Traceback (most recent call last):")]
        )
        observer.worker_output("sentiment", "AllTraffic", "w4", [(stamp_ms + 1, "hello from print")])
        observer.flush()
        group = store.group(endpoint_group("sentiment"))
        assert group is not None
        [stream] = store.streams(group.id)
        assert stream.name == "AllTraffic/i-0123456789abcdef0"
        assert [(e.timestamp_ms, e.message) for e in store.events(stream.id)] == [
            (stamp_ms, "[w3] Traceback (most recent call last):"),
            (stamp_ms + 1, "[w4] hello from print"),
        ]
    finally:
        observer.close()
        store.close()
