"""The zygote supervisor's policy and its failure path: backoff while a process keeps dying, and a clear
error (and metric) for spawns when it cannot be kept up."""

from __future__ import annotations

import asyncio
import os

import pytest

from observers import Events
from zeroserve.workers.supervisor import Backoff, ZygoteSupervisor, ZygoteUnavailable


def test_first_death_restarts_at_once_then_the_delay_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base_s=0.1, cap_s=0.5, healthy_after_s=10, give_up_after=4)
    delays = [backoff.record_death(started_s=t, died_s=t + 1) for t in range(6)]
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.5, 0.5]
    assert backoff.failing


def test_a_healthy_run_ends_the_streak() -> None:
    backoff = Backoff(base_s=0.1, healthy_after_s=10, give_up_after=2)
    backoff.record_death(0, 1)
    backoff.record_death(1, 2)
    assert backoff.failing
    assert backoff.record_death(2, 60) == 0.0
    assert not backoff.failing


def test_a_zygote_that_cannot_start_fails_spawns_with_a_clear_error_and_a_metric() -> None:
    async def scenario() -> str:
        env = {k: v for k, v in os.environ.items() if k != "ZEROSERVE_SOCKET"}  # it exits at once
        events = Events()
        supervisor = ZygoteSupervisor(
            env, observer=events, backoff=Backoff(base_s=0.01, cap_s=0.02, give_up_after=3)
        )
        await supervisor.start()
        loop = asyncio.get_running_loop()
        try:
            with pytest.raises(ZygoteUnavailable) as caught:
                await supervisor.request_spawn("w1", {}, deadline_s=loop.time() + 20)
        finally:
            await supervisor.close()
        assert supervisor.restarts >= 3
        assert events.kinds[:2] == ["zygote_restarted", "zygote_restarted"]
        assert "zygote_failing" in events.kinds
        return str(caught.value)

    message = asyncio.run(scenario())
    assert "keeps dying" in message and "exited with code 1" in message


def test_a_zygote_that_never_says_hello_is_killed_and_replaced() -> None:
    async def scenario() -> int:
        # A socket nobody listens on: the zygote imports the runtime stack, then cannot connect and exits;
        # before it gets there, the start timeout has already killed it.
        env = dict(os.environ, ZEROSERVE_SOCKET="@zeroserve-test-nobody-listens")
        supervisor = ZygoteSupervisor(env, start_timeout_s=0.05, backoff=Backoff(base_s=0.01, cap_s=0.02))
        await supervisor.start()
        first = supervisor.pid
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while supervisor.pid == first and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await supervisor.close()
        assert supervisor.pid != first
        assert supervisor.last_error == "the zygote process exited with code -9", "killed, not exited"
        return supervisor.restarts

    assert asyncio.run(scenario()) >= 1


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie (a test that adopted orphans in-process is its subreaper)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_zygote_whose_starter_died_before_pdeathsig_took_effect_exits_without_connecting() -> None:
    # The starter forks the zygote and exits at once, long before the zygote's interpreter is up: PDEATHSIG
    # then never fires, so only the zygote's own check of who its parent is can stop it.
    import socket
    import subprocess
    import sys
    import time

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name = f"zeroserve-test-orphan-{os.getpid()}"
    listener.bind("\0" + name)
    listener.listen()
    listener.settimeout(0.2)
    starter = (
        "import os, subprocess, sys\n"
        "env = dict(os.environ, ZEROSERVE_PARENT_PID=str(os.getpid()))\n"
        "zygote = [sys.executable, '-m', 'zeroserve.workers.zygote']\n"
        "print(subprocess.Popen(zygote, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)\n"
        "os._exit(0)\n"
    )
    env = dict(os.environ, ZEROSERVE_SOCKET="@" + name)
    done = subprocess.run(
        [sys.executable, "-c", starter], env=env, capture_output=True, text=True, check=True
    )
    zygote = int(done.stdout)
    deadline = time.monotonic() + 30
    connected = False
    while not _gone(zygote) and time.monotonic() < deadline:
        try:
            listener.accept()[0].close()
            connected = True
        except TimeoutError:
            pass
    listener.close()
    assert _gone(zygote), "the orphaned zygote should have exited"
    assert not connected, "it should exit before it says hello to a server that is not there"
