"""Membership from Ray's node table and agent pings, on a fake clock."""

from __future__ import annotations

from zeroserve.cluster.membership import Membership


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_new_node_is_joined_once_and_becomes_a_member_when_its_agent_is_ready() -> None:
    members = Membership(lost_after_s=3.0, clock=Clock())
    assert members.update(["a", "b"]) == (["a", "b"], [])
    assert members.update(["a", "b"]) == ([], [])  # joining: not joined twice while its agent starts
    assert members.joined("a")
    assert members.members == {"a"} and members.joining == {"b"}


def test_a_node_gone_from_the_table_is_left_whether_joining_or_member() -> None:
    members = Membership(lost_after_s=3.0, clock=Clock())
    members.update(["a", "b"])
    members.joined("a")
    assert members.update([]) == ([], ["a", "b"])
    assert not members.joined("b")  # its agent answered after it left: not a member
    assert members.members == set()


def test_a_member_whose_agent_stops_answering_is_silent_after_the_timeout() -> None:
    clock = Clock()
    members = Membership(lost_after_s=3.0, clock=clock)
    members.update(["a", "b"])
    members.joined("a")
    members.joined("b")
    clock.now_s += 2.0
    members.heard("b")
    assert members.silent() == []
    clock.now_s += 1.5
    assert members.silent() == ["a"]  # 3.5 s since a answered, 1.5 s since b


def test_a_forgotten_node_still_in_the_table_is_joined_again() -> None:
    members = Membership(lost_after_s=3.0, clock=Clock())
    members.update(["a"])
    members.joined("a")
    members.forget("a")  # its agent died; Ray restarts it
    assert members.update(["a"]) == (["a"], [])
