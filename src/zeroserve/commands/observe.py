"""`zeroserve cost` and `zeroserve logs`: read a running server's meter and request log over HTTP."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from zeroserve.cli import app, console

DEFAULT_URL = "http://127.0.0.1:8080"
FOLLOW_INTERVAL_S = 1.0

UrlOpt = Annotated[str, typer.Option("--url", envvar="ZEROSERVE_URL", help="The zeroserve server to ask")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the server's JSON instead of a table")]


def _get(url: str, path: str, params: dict[str, Any]) -> Any:
    """GET a JSON route; a server that is down or answers an error ends the command with its message."""
    try:
        wanted = {k: v for k, v in params.items() if v is not None}
        response = httpx.get(url.rstrip("/") + path, params=wanted, timeout=30)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach zeroserve at {url}: {exc}")
        raise typer.Exit(1) from None
    if response.status_code != 200:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        console.print(f"[red]{message}")
        raise typer.Exit(1)
    return response.json()


@app.command()
def cost(
    name: Annotated[str | None, typer.Argument(help="Only this endpoint")] = None,
    since: Annotated[str | None, typer.Option(help="Epoch seconds, ISO 8601, or an age: 30m, 6h, 7d")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
) -> None:
    """What each endpoint cost: invocations, cold starts, GB-seconds, bytes and dollars.

    Priced like SageMaker Serverless: the in-worker inference duration, rounded up to 1 ms, x MemorySizeInMB,
    plus payload bytes in and out. Queue wait and cold starts are not billed.
    """
    report = _get(url, "/zeroserve/cost", {"endpoint": name, "since": since})
    if as_json:
        print(json.dumps(report, indent=2))
        return
    period = "all time" if report["since_s"] is None else f"since {_clock(report['since_s'])}"
    table = Table(title=f"zeroserve cost, {period}")
    for header in ("endpoint", "invocations", "cold starts", "4xx", "5xx", "billed ms", "GB-s", "bytes in",
                   "bytes out", "cost USD"):
        table.add_column(header, justify="left" if header == "endpoint" else "right")
    for usage in report["endpoints"]:
        table.add_row(*_cost_cells(usage))
    if len(report["endpoints"]) > 1:
        table.add_row(*_cost_cells(report["total"]), style="bold")
    console.print(table)
    prices = report["prices"]
    console.print(f"[dim]prices: ${_plain(prices['gb_second_usd'])} per GB-second, "
                  f"${_plain(prices['gb_data_usd'])} per GB in+out; "
                  f"billed duration: {report['billed_duration']}")


_COUNT_KEYS = ("invocations", "cold_starts", "errors_4xx", "errors_5xx", "billed_ms")


def _cost_cells(usage: dict[str, Any]) -> list[str]:
    return [
        usage["endpoint"],
        *(f"{usage[key]:,}" for key in _COUNT_KEYS),
        f"{usage['gb_seconds']:.3f}", f"{usage['bytes_in']:,}", f"{usage['bytes_out']:,}",
        f"{usage['cost_usd']:.8f}",
    ]


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, max=10_000, help="Recent lines to show")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Print new lines as they come")] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
) -> None:
    """Show the endpoint's request log, one line per invocation.

    Each line: status, cold start, total = queue + model + other ms, billed ms, bytes in and out.
    """
    page = _get(url, f"/zeroserve/logs/{name}", {"tail": lines})
    _print_lines(page["lines"], as_json)
    try:
        while follow:
            time.sleep(FOLLOW_INTERVAL_S)
            page = _get(url, f"/zeroserve/logs/{name}", {"after": page["cursor"]})
            _print_lines(page["lines"], as_json)
    except KeyboardInterrupt:
        pass


def _print_lines(entries: list[dict[str, Any]], as_json: bool) -> None:
    for entry in entries:
        if as_json:
            print(json.dumps(entry), flush=True)
        else:
            console.print(_describe(entry), highlight=False)


def _describe(entry: dict[str, Any]) -> str:
    status = f"{entry['status']}" + (f" {entry['error']}" if entry.get("error") else "")
    colour = "green" if entry["status"] < 400 else "red"
    cold = " [yellow]cold[/]" if entry.get("cold") else ""
    return (
        f"{_clock(entry['timestamp_s'])} {entry['endpoint']}/{entry['variant']} [{colour}]{status}[/]{cold} "
        f"total {entry['total_ms']:.2f} ms = queue {entry['queue_ms']:.2f} + model {entry['model_ms']:.2f} "
        f"+ other {max(0.0, entry['overhead_ms'] - entry['queue_ms']):.2f}; billed {entry['billed_ms']} ms "
        f"@ {entry['memory_mb']} MB; {entry['bytes_in']} B in, {entry['bytes_out']} B out"
    )


def _plain(amount: float) -> str:
    """0.00002, not 2e-05."""
    return f"{amount:.12f}".rstrip("0").rstrip(".") or "0"


def _clock(timestamp_s: float) -> str:
    return datetime.fromtimestamp(timestamp_s).isoformat(sep=" ", timespec="milliseconds")
