"""The bundle builder's converter processes (control/bundles.py): an early converter, started before the
artifact is fetched, converts what it is sent once it is; one not needed is killed; one that died is
replaced by a fresh conversion."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import uvloop

from zeroserve.control.bundles import BundleBuilder, BundleOptions

OPTIONS = BundleOptions(task="text-classification", quantize="false")
DIGEST = "f" * 64


def test_an_early_converter_converts_what_it_is_sent(tmp_path: Path, tiny_model_dir: Path) -> None:
    async def scenario() -> tuple[Path, int | None, bool]:
        builder = BundleBuilder(tmp_path / "bundles")
        async with builder.early_converter(OPTIONS) as early:
            assert early is not None
            bundle = await builder.build(tiny_model_dir, DIGEST, OPTIONS, early)
            return bundle, early.process.returncode, early.used

    bundle, returncode, used = asyncio.run(scenario())
    assert used and returncode == 0
    # The digest reached it over stdin: it was started before anyone knew it.
    assert json.loads((bundle / "bundle.json").read_text())["source_digest"] == DIGEST


def test_an_early_converter_is_killed_unused_when_the_bundle_is_cached(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    async def scenario() -> tuple[Path, Path, int | None, bool]:
        builder = BundleBuilder(tmp_path / "bundles")
        first = await builder.build(tiny_model_dir, DIGEST, OPTIONS)
        async with builder.early_converter(OPTIONS) as early:
            assert early is not None
            again = await builder.build(tiny_model_dir, DIGEST, OPTIONS, early)
        return first, again, early.process.returncode, early.used

    first, again, returncode, used = asyncio.run(scenario())
    assert again == first
    assert not used and returncode == -signal.SIGKILL


def test_only_one_early_converter_waits_at_a_time(tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, bool]:
        builder = BundleBuilder(tmp_path / "bundles")
        async with builder.early_converter(OPTIONS) as first, builder.early_converter(OPTIONS) as second:
            return first is not None, second is None

    assert asyncio.run(scenario()) == (True, True)


def test_an_early_converter_that_died_is_replaced_by_a_fresh_conversion(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    async def scenario() -> tuple[Path, int | None]:
        builder = BundleBuilder(tmp_path / "bundles")
        async with builder.early_converter(OPTIONS) as early:
            assert early is not None
            early.process.send_signal(signal.SIGKILL)
            await early.process.wait()
            assert early.process.stdin is not None
            for _ in range(500):  # until the loop has seen its stdin pipe close, as a later deploy would
                if early.process.stdin.is_closing():
                    break
                await asyncio.sleep(0.01)
            bundle = await builder.build(tiny_model_dir, DIGEST, OPTIONS, early)
            return bundle, early.process.returncode

    # On the server's loop (uvicorn runs uvloop), where writing to a closed pipe raises.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        bundle, returncode = runner.run(scenario())
    assert returncode == -signal.SIGKILL
    assert (bundle / "bundle.json").is_file()


def test_an_early_converter_given_no_work_exits_cleanly() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "zeroserve.conversion.export", "--stdin"],
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
