"""The `zeroserve` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from zeroserve.config import Settings, SettingsError

app = typer.Typer(
    help="Self-hosted, SageMaker-Serverless-compatible inference for Hugging Face models.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

HostOpt = Annotated[str | None, typer.Option(help="Address to bind [env ZEROSERVE_HOST, default 127.0.0.1]")]
PortOpt = Annotated[
    int | None, typer.Option(help="Port (0 picks a free one) [env ZEROSERVE_PORT, default 8080]")
]
DataDirOpt = Annotated[
    Path | None, typer.Option(help="SQLite, artifact cache, logs [env ZEROSERVE_DATA_DIR]")
]
IdleOpt = Annotated[float | None, typer.Option(help="Stop idle workers after this many seconds [default 60]")]
BudgetOpt = Annotated[int | None, typer.Option(help="Memory budget for all workers, MB [default 80% of RAM]")]
InsecureOpt = Annotated[bool, typer.Option(help="Allow a non-loopback bind without authentication")]
S3Opt = Annotated[
    bool,
    typer.Option(
        "--s3",
        help="Start a local S3 store (SeaweedFS) for artifacts and training data, unless S3 is "
        "configured (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL or AWS credentials) [env ZEROSERVE_S3]",
    ),
]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Run on a Ray cluster: its address (HEAD:PORT, or auto); workers go to every node "
        "(docs/cluster.md) [env ZEROSERVE_RAY]",
    ),
]
PortFileOpt = Annotated[Path | None, typer.Option(help="Write the bound port to this file (for scripts)")]


def _settings(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    idle: float | None,
    budget: int | None,
    insecure: bool,
    s3: bool = False,
    ray: str | None = None,
) -> Settings:
    try:
        return Settings.from_env(
            s3=s3 or None,
            ray=ray,
            host=host,
            port=port,
            data_dir=data_dir,
            idle_timeout_s=idle,
            memory_budget_mb=budget,
            insecure=insecure or None,
        )
    except SettingsError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    idle_timeout_s: IdleOpt = None,
    memory_budget_mb: BudgetOpt = None,
    insecure: InsecureOpt = False,
    s3: S3Opt = False,
    ray: RayOpt = None,
    port_file: PortFileOpt = None,
) -> None:
    """Run the server: SageMaker control plane, runtime and metrics on one port."""
    from zeroserve.cluster import ClusterUnavailable
    from zeroserve.http_server import InsecureBind
    from zeroserve.http_server import serve as run_server
    from zeroserve.local_s3.server_s3 import S3Unavailable

    settings = _settings(host, port, data_dir, idle_timeout_s, memory_budget_mb, insecure, s3, ray)
    if settings.ray:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            console.print("[red]--ray needs Ray: pip install 'zeroserve[ray]' on every node")
            raise typer.Exit(2)
    try:
        run_server(settings, port_file=port_file)
    except (InsecureBind, S3Unavailable, ClusterUnavailable) as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None


@app.command()
def up(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    idle_timeout_s: IdleOpt = None,
    memory_budget_mb: BudgetOpt = None,
    insecure: InsecureOpt = False,
    model: Annotated[
        Path | None,
        typer.Option(
            help="model.tar.gz to serve [default: the packaged MiniLM "
            "sentiment model, trained once and cached]",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    s3: S3Opt = False,
    port_file: PortFileOpt = None,
) -> None:
    """Serve the sentiment model as endpoint `sentiment` and show how to call it."""
    from zeroserve.commands.up import deploy_default
    from zeroserve.http_server import InsecureBind
    from zeroserve.http_server import serve as run_server
    from zeroserve.local_s3.server_s3 import S3Unavailable
    from zeroserve.wiring import Services

    if model is None:
        from zeroserve.sentiment_trainer.defaults import ensure_default_model

        model = ensure_default_model()
    artifact = model
    settings = _settings(host, port, data_dir, idle_timeout_s, memory_budget_mb, insecure, s3)

    async def on_ready(services: Services, url: str) -> None:
        try:
            await deploy_default(services, url, artifact, console)
        except OSError as exc:  # the artifact went away or became unreadable after the check above
            console.print(f"[red]cannot serve {artifact}: {exc}")

    try:
        run_server(settings, port_file=port_file, on_ready=on_ready)
    except (InsecureBind, S3Unavailable) as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None


def main() -> None:
    # The long-running server keeps only what serving needs resident: the client commands (and httpx,
    # tables, ...) are not loaded into it.
    if sys.argv[1:2] != ["serve"]:
        _register_commands()
    app()


def _register_commands() -> None:
    """Command groups live in their own modules (zeroserve/commands/*) and attach to `app` on import."""
    import importlib
    import pkgutil

    import zeroserve.commands

    for module in pkgutil.iter_modules(zeroserve.commands.__path__):
        importlib.import_module(f"zeroserve.commands.{module.name}")


if __name__ == "__main__":
    main()
