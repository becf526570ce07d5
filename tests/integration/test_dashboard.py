"""The dashboard in a real headless Chromium: the page loads, runs its JS against the server, lists the
deployed endpoint with its status and config, and counts its invocations."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import ServerProcess, deploy

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium (Debian: apt-get install -y chromium)"
)


def headless(url: str, profile: Path, *args: str) -> str:
    """Load `url`, let its scripts run for 5 s of virtual time (fetches complete meanwhile), return stdout."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args, url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def endpoint_row(dom: str, name: str) -> str:
    found = re.search(rf'<tr data-endpoint="{re.escape(name)}">(.*?)</tr>', dom, re.S)
    assert found, f"no row for {name} in the rendered page"
    return found.group(1)


def invocations_shown(row: str) -> int:
    found = re.search(r'data-field="invocations">([\d,]+)<', row)
    assert found, row
    return int(found.group(1).replace(",", ""))


def cells(row: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td.*?</td>", row, re.S)]


@pytest.fixture(scope="module")
def dashed(sm: Any, tiny_tarball: Path) -> str:
    described = deploy(sm, "dashed", str(tiny_tarball), memory_mb=3072, max_concurrency=7)
    assert described["EndpointStatus"] == "InService"
    return "dashed"


def test_dashboard_json_joins_status_config_cost_and_live_series(server: ServerProcess, dashed: str) -> None:
    httpx.post(f"{server.url}/endpoints/{dashed}/invocations", json={"inputs": "hello"}, timeout=30)
    data = httpx.get(f"{server.url}/zeroserve/dashboard").json()

    [endpoint] = [e for e in data["endpoints"] if e["name"] == dashed]
    assert endpoint["status"] == "InService"
    assert endpoint["variants"] == [
        {"variant": "AllTraffic", "model": dashed, "memory_mb": 3072, "max_concurrency": 7, "provisioned": 0}
    ]
    [usage] = [u for u in data["cost"]["endpoints"] if u["endpoint"] == dashed]
    assert usage["invocations"] >= 1
    assert sum(bucket["invocations"] for bucket in data["series"][dashed]) >= 1
    assert dashed in data["live"]["endpoints"]


@needs_chromium
def test_page_lists_the_endpoint_and_counts_a_request_in_chromium(
    server: ServerProcess, dashed: str, tmp_path: Path
) -> None:
    before_dom = headless(f"{server.url}/ui", tmp_path / "profile", "--dump-dom")
    before = endpoint_row(before_dom, dashed)
    shown = cells(before)
    assert shown[:5] == [dashed, "InService", "AllTraffic", "3072 MB", "7"]

    answer = httpx.post(f"{server.url}/endpoints/{dashed}/invocations", json={"inputs": "more"}, timeout=30)
    assert answer.status_code == 200

    after = endpoint_row(headless(f"{server.url}/ui", tmp_path / "profile", "--dump-dom"), dashed)
    assert invocations_shown(after) == invocations_shown(before) + 1 > 0


@needs_chromium
def test_page_renders_to_a_screenshot(server: ServerProcess, dashed: str, tmp_path: Path) -> None:
    picture = tmp_path / "ui.png"
    headless(f"{server.url}/ui", tmp_path / "profile", "--window-size=1280,900", f"--screenshot={picture}")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 10_000  # a blank page is a few KB


def test_static_files_are_served_and_nothing_else(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/ui").headers["content-type"].startswith("text/html")
    assert httpx.get(f"{server.url}/ui/static/dashboard.js").status_code == 200
    assert httpx.get(f"{server.url}/ui/static/../../config.py").status_code == 404
