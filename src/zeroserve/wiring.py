"""Composition root: builds the store, the data plane, the control plane and the log store from one Settings
object, and tears them down in the right order. Everything is created inside the running event loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zeroserve.artifacts.allowed_paths import AllowedRoots, default_roots
from zeroserve.artifacts.cache import ArtifactCache
from zeroserve.artifacts.s3client import s3_client
from zeroserve.config import Settings, default_cache_dir
from zeroserve.control.actions import ControlPlane
from zeroserve.control.bundles import BundleBuilder
from zeroserve.control.lifecycle import EndpointLifecycle
from zeroserve.database.repository import Repository
from zeroserve.database.sqlite import Database
from zeroserve.local_s3.server_s3 import S3Access
from zeroserve.logs.actions import LogsApi
from zeroserve.logs.endpoint_logs import EndpointLogs
from zeroserve.logs.log_store import LOGS_DB_NAME, LogStore
from zeroserve.metrics.events import FanOut, Observer
from zeroserve.metrics.telemetry import Telemetry
from zeroserve.scheduler.nodes import LOCAL_NODE_ID
from zeroserve.scheduler.pool import Pool
from zeroserve.scheduler.router import Router
from zeroserve.training_jobs.jobs import TrainingJobs
from zeroserve.workers.hub import WorkerHub

if TYPE_CHECKING:
    from zeroserve.cluster.cluster import RayCluster


@dataclass
class Services:
    settings: Settings
    db: Database
    repo: Repository
    hub: WorkerHub
    pool: Pool
    router: Router
    lifecycle: EndpointLifecycle
    control: ControlPlane
    training: TrainingJobs
    observer: FanOut
    telemetry: Telemetry
    logs: LogStore  # the LogSink training jobs and workers write to; CloudWatch Logs reads it
    logs_api: LogsApi
    endpoint_logs: EndpointLogs
    s3: S3Access
    cluster: RayCluster | None = None  # with --ray only (zeroserve/cluster/); ray is not imported otherwise
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    async def start(cls, settings: Settings, observers: list[Observer] | None = None) -> Services:
        for folder in (settings.data_dir, settings.artifacts_dir, settings.run_dir, settings.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        # First, so that every process started below inherits the S3 environment (see objectstore/service).
        s3 = await S3Access.open(settings)
        db = Database(settings.db_path)
        repo = Repository(db)
        telemetry = Telemetry.open(settings)
        logs = LogStore(settings.data_dir / LOGS_DB_NAME)
        logs_api = LogsApi(logs, region=settings.region, account_id=settings.account_id)
        endpoint_logs = EndpointLogs(logs)
        observer = FanOut(*telemetry.observers, endpoint_logs, *(observers or []))
        hub = WorkerHub(
            observer=observer, zygote_ack_timeout_s=settings.zygote_ack_timeout_s, output=endpoint_logs
        )
        await hub.start()
        cluster = await _connect_cluster(settings)
        pool = _pool(settings, hub, observer, cluster)
        if cluster is not None:
            await cluster.start(hub, pool)
        telemetry.prometheus.watch_nodes(pool)
        router = _router(settings, pool, observer)
        lifecycle, training, control = _control_plane(settings, repo, logs, router)
        services = cls(
            settings=settings,
            db=db,
            repo=repo,
            hub=hub,
            pool=pool,
            router=router,
            lifecycle=lifecycle,
            control=control,
            training=training,
            observer=observer,
            telemetry=telemetry,
            logs=logs,
            logs_api=logs_api,
            endpoint_logs=endpoint_logs,
            s3=s3,
            cluster=cluster,
        )
        lifecycle.restore()
        training.restore()
        return services

    async def stop(self) -> None:
        await self.training.close()
        for endpoint in list(self.lifecycle.tasks):
            self.lifecycle.cancel(endpoint)
        await self.router.close()
        if self.cluster is not None:
            await self.cluster.close()
        await self.hub.close()
        self.telemetry.close()
        self.endpoint_logs.close()  # hands what it holds to the store, which writes it on close
        self.logs.close()
        self.db.close()
        await self.s3.close()


async def _connect_cluster(settings: Settings) -> RayCluster | None:
    """The Ray cluster with --ray, else None (ray is imported only then)."""
    if not settings.ray:
        return None
    from zeroserve.cluster.cluster import RayCluster

    return await RayCluster.connect_to(settings)


def _pool(settings: Settings, hub: WorkerHub, observer: Observer, cluster: RayCluster | None) -> Pool:
    return Pool(
        hub,
        idle_timeout_s=settings.idle_timeout_s,
        memory_budget_mb=settings.memory_budget_mb,
        spawn_timeout_s=settings.worker_start_timeout_s,
        worker_threads=settings.worker_threads,
        observer=observer,
        template_idle_timeout_s=settings.template_idle_timeout_s,
        node_id=cluster.head_node_id if cluster else LOCAL_NODE_ID,
        node_address=cluster.head_ip if cluster else "127.0.0.1",
    )


def _router(settings: Settings, pool: Pool, observer: Observer) -> Router:
    return Router(
        pool,
        account_id=settings.account_id,
        region=settings.region,
        wait_budget_s=settings.model_wait_budget_s,
        invocation_timeout_s=settings.invocation_timeout_s,
        stream_timeout_s=settings.stream_timeout_s,
        queue_limit=settings.queue_per_endpoint or None,
        observer=observer,
    )


def _control_plane(
    settings: Settings, repo: Repository, logs: LogStore, router: Router
) -> tuple[EndpointLifecycle, TrainingJobs, ControlPlane]:
    """Endpoints (with the artifact cache and bundle builder they deploy from), training jobs, and the
    control plane that serves both."""
    allowed = AllowedRoots.parse(
        settings.allowed_paths, default_roots(settings.data_dir, default_cache_dir())
    )
    artifacts = ArtifactCache(settings.artifacts_dir, allowed=allowed)
    artifacts.sweep_stale()
    bundles = BundleBuilder(settings.artifacts_dir / "bundles")
    lifecycle = EndpointLifecycle(repo, artifacts, bundles, router, settings)
    training = TrainingJobs(repo, logs, settings, s3_client=s3_client, allowed=allowed)
    control = ControlPlane(
        repo,
        lifecycle,
        region=settings.region,
        account_id=settings.account_id,
        extra_actions=training.actions,
    )
    return lifecycle, training, control
