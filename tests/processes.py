"""Looking at processes from a test: who descends from whom, who is still alive, and waiting for a state
another process reaches (polling, because a test sees that process only from outside)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def descendants(pid: int) -> set[int]:
    """Every live process whose ancestry leads to pid (the zygote runs in its own session)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_all_dead(pids: set[int], timeout_s: float) -> set[int]:
    """The pids still alive after waiting up to timeout_s for them to go."""
    deadline = time.monotonic() + timeout_s
    while (living := {pid for pid in pids if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return living


def loaded_ray(pid: int) -> bool:
    """Importing ray maps its extension module (_raylet.so) into the process: look for it in its maps."""
    return "_raylet" in Path(f"/proc/{pid}/maps").read_text()


def wait_until(condition: Callable[[], object], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll `condition` until it is true (True) or `timeout_s` passed (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return False
