"""Worker events name their kind from one closed set (WorkerEventKind), whose values are the wire format."""

from __future__ import annotations

import pytest

from zeroserve.metrics.events import WorkerEvent, WorkerEventKind


def test_a_worker_event_of_an_unknown_kind_is_refused_where_it_is_made() -> None:
    with pytest.raises(ValueError, match="strated"):
        WorkerEvent("sentiment", "AllTraffic", "strated")


def test_a_kind_named_by_its_member_or_its_string_is_the_same_kind() -> None:
    by_member = WorkerEvent("sentiment", "AllTraffic", WorkerEventKind.KILLED_MEMORY)
    by_string = WorkerEvent("sentiment", "AllTraffic", "killed_memory")

    assert by_member == by_string
    assert {by_member.kind: 1}[by_string.kind] == 1
    assert f"zeroserve worker {by_member.kind}" == "zeroserve worker killed_memory"
