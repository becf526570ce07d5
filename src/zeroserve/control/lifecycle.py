"""Endpoint lifecycle: Creating -> InService | Failed, and blue/green Updating.

Deploying a variant means: fetch and unpack the artifact (cached by digest), convert it to a bundle (cached),
fork one worker that loads it and answers a warm-up (proof the model serves), and only then route traffic.
An update prepares the new variants beside the old ones and switches atomically; on failure the old ones
keep serving and FailureReason says why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zeroserve.artifacts.cache import ArtifactCache
from zeroserve.config import Settings
from zeroserve.control.bundles import BundleBuilder, BundleOptions
from zeroserve.control.environment import BadValue, ModelEnvironment
from zeroserve.database.repository import Document, Repository
from zeroserve.errors import ArtifactError, ZeroserveError
from zeroserve.runtimes import task_names
from zeroserve.runtimes.manifest import read_manifest
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.router import Router
from zeroserve.scheduler.variant_pool import VariantPool
from zeroserve.workers.hub import SpawnFailed

log = logging.getLogger("zeroserve.lifecycle")
_generations = itertools.count(1)
INSTANCE_MEMORY_MB = 4096
INSTANCE_MAX_CONCURRENCY = 1000


def container_of(model: Document) -> Document:
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return dict(container)


class EndpointLifecycle:
    def __init__(
        self,
        repo: Repository,
        artifacts: ArtifactCache,
        bundles: BundleBuilder,
        router: Router,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.artifacts = artifacts
        self.bundles = bundles
        self.router = router
        self.settings = settings
        self.clock = clock
        self.tasks: dict[str, asyncio.Task[None]] = {}
        # (bundle, environment) pairs a worker has loaded and answered with since this server started:
        # deploying the same model again needs no new proof, which keeps 1,000 endpoints of one model cheap.
        # Deploys of the same model at the same time share one proof instead of forking one worker each.
        self._proofs: dict[str, asyncio.Lock] = {}
        self._proven: set[str] = set()

    # --- entry points ----------------------------------------------------------------------------

    def start(self, endpoint: str, config: Document, models: dict[str, Document], *, updating: bool) -> None:
        task = asyncio.get_running_loop().create_task(self._deploy(endpoint, config, models, updating))
        self.tasks[endpoint] = task
        task.add_done_callback(
            lambda t: self.tasks.pop(endpoint, None) if self.tasks.get(endpoint) is t else None
        )

    def cancel(self, endpoint: str) -> None:
        task = self.tasks.pop(endpoint, None)
        if task is not None:
            task.cancel()

    async def wait(self, endpoint: str) -> None:
        task = self.tasks.get(endpoint)
        if task is not None:
            await asyncio.wait({task})

    def restore(self) -> None:
        """After a restart (clean or kill -9): route InService endpoints at once from their recorded bundles
        (workers start on the first request); redo interrupted creates; an interrupted update keeps the old
        config. Whatever cannot be resumed is Failed with a reason: nothing stays Creating or Updating."""
        for row in self.repo.all("endpoint"):
            try:
                self._restore(row.name, row.status, row.doc.get("_zeroserve", {}))
            except Exception as exc:  # one bad row must not keep the server (and the others) down
                log.exception("endpoint %s could not be restored", row.name)
                self._set_status(row.name, "Failed", f"could not be restored after a restart: {exc}")

    def _restore(self, name: str, status: str, internal: Document) -> None:
        deployments = [VariantDeployment(**d) for d in internal.get("deployments", [])]
        ready = deployments and all(Path(d.bundle_dir, "bundle.json").is_file() for d in deployments)
        if status in ("InService", "Updating") and ready:
            fresh = [dataclasses.replace(d, generation=next(_generations)) for d in deployments]
            self.router.set_endpoint(name, fresh)
            if status == "Updating":
                self._set_status(name, "InService", "UpdateEndpoint was interrupted by a server restart.")
        elif status in ("Creating", "InService", "Updating"):
            snapshot = internal.get("snapshot", {})
            if snapshot:
                self._set_status(name, "Creating", None)
                self.start(name, snapshot["config"], snapshot["models"], updating=False)
            else:
                self._set_status(name, "Failed", "interrupted by a server restart and could not be resumed")

    # --- the deployment ----------------------------------------------------------------------------

    async def _deploy(
        self, endpoint: str, config: Document, models: dict[str, Document], updating: bool
    ) -> None:
        """The task boundary: whatever the deployment raises, the endpoint ends InService (rolled back, for
        an update) or Failed, with a FailureReason; an unexpected error also logs its traceback."""
        started = time.perf_counter()
        prepared: list[VariantPool] = []
        try:
            deployments = [
                await self._prepare(endpoint, variant, models[variant["ModelName"]])
                for variant in config["ProductionVariants"]
            ]
            for deployment in deployments:
                prepared.append(self.router.deploy(deployment))
            for variant_pool in prepared:
                await self._prove(variant_pool)
            self.router.activate(endpoint, prepared)
            self._mark_in_service(endpoint, config, models, [p.deployment for p in prepared])
        except asyncio.CancelledError:
            self._discard(prepared)
            raise
        except (ZeroserveError, SpawnFailed, OSError, BadValue) as exc:
            reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            log.warning("endpoint %s failed to deploy: %s", endpoint, reason)
            self._fail(endpoint, prepared, updating, reason)
            return
        except Exception as exc:  # a bug: still a final state, and the traceback for whoever fixes it
            log.exception("endpoint %s: the deployment raised unexpectedly", endpoint)
            reason = f"internal error while deploying: {type(exc).__name__}: {exc}"
            self._fail(endpoint, prepared, updating, reason)
            return
        log.info("endpoint %s InService in %.1f s", endpoint, time.perf_counter() - started)

    def _discard(self, prepared: list[VariantPool]) -> None:
        for variant_pool in prepared:
            try:
                self.router.discard(variant_pool.key)
            except Exception:  # cleanup must not hide the failure being reported
                log.exception("could not remove variant %s", variant_pool.key)

    def _fail(self, endpoint: str, prepared: list[VariantPool], updating: bool, reason: str) -> None:
        routed = self.router.routed_keys(endpoint)
        self._discard([p for p in prepared if p.key not in routed])
        try:
            if updating:
                rolled_back = f"UpdateEndpoint failed and was rolled back: {reason}"
                self._set_status(endpoint, "InService", rolled_back)
            else:
                self.router.remove_endpoint(endpoint)
                self._set_status(endpoint, "Failed", reason)
        except Exception:  # the store itself failed: nothing left to record it in
            log.exception("endpoint %s: could not record the failure %r", endpoint, reason)

    async def _prove(self, variant_pool: VariantPool) -> None:
        """Fork a worker that loads the model and answers a warm-up, unless this model already did."""
        proof = _proof_key(variant_pool.deployment)
        async with self._proofs.setdefault(proof, asyncio.Lock()):
            if proof not in self._proven:
                await self.router.start_and_wait(variant_pool)
                self._proven.add(proof)

    async def _prepare(self, endpoint: str, variant: Document, model: Document) -> VariantDeployment:
        container = container_of(model)
        env = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
        url = container.get("ModelDataUrl") or env.get("HF_MODEL_ID", "")
        if not url:
            raise ArtifactError("the model has no ModelDataUrl and no local HF_MODEL_ID folder")
        label = "ModelDataUrl" if container.get("ModelDataUrl") else "HF_MODEL_ID"
        options = BundleOptions.from_env(env)
        started = time.perf_counter()
        async with self.bundles.early_converter(options) as converter:  # it imports while we fetch
            resolved = await asyncio.to_thread(self.artifacts.resolve, url, label=label)
            fetched = time.perf_counter()
            bundle = await self.bundles.build(resolved.model_dir, resolved.digest, options, converter)
        log.info(
            "endpoint %s variant %s: artifact %s in %.2f s, bundle %s in %.2f s",
            endpoint,
            variant["VariantName"],
            "unpacked" if resolved.fresh else "cached",
            fetched - started,
            bundle.name,
            time.perf_counter() - fetched,
        )
        return self._deployment(endpoint, variant, bundle, env)

    def _deployment(
        self, endpoint: str, variant: Document, bundle: Path, env: dict[str, str]
    ) -> VariantDeployment:
        serverless = variant.get("ServerlessConfig")
        cores = os.cpu_count() or 1
        parsed = ModelEnvironment.parse(env)
        common: dict[str, Any] = dict(
            endpoint=endpoint,
            variant=variant["VariantName"],
            bundle_dir=str(bundle),
            weight=float(variant.get("InitialVariantWeight", 1.0)),
            env=env,
            # A generative worker runs one generation at a time (no decode-step batching yet), so a second
            # request is a reason to scale out, not to queue behind a stream on a busy worker.
            max_batch_size=1 if _is_generative(bundle) else parsed.max_batch_size,
            max_batch_wait_ms=parsed.max_batch_wait_ms,
            generation=next(_generations),
        )
        if serverless:
            max_concurrency = int(serverless["MaxConcurrency"])
            # One runtime thread per worker and up to one worker per core: the cores are shared by processes,
            # not threads, and a 1-thread session is what a template can hold, so cold starts fork from a
            # loaded model (scheduler/templates.py). Measured side by side with wrk at 32 clients on 2 cores:
            # two 1-thread workers ~1,010 req/s (p99 ~52 ms) vs one 2-thread worker ~640 (p99 ~60); on a
            # machine loaded by other jobs the order flipped. Two 2-thread workers on 2 cores lost to one.
            threads = self.settings.worker_threads or 1
            max_workers = parsed.max_workers or max(1, min(max_concurrency, cores // threads))
            return VariantDeployment(
                memory_mb=int(serverless["MemorySizeInMB"]),
                max_concurrency=max_concurrency,
                min_workers=int(serverless.get("ProvisionedConcurrency") or 0),
                serverless=True,
                max_workers=max_workers,
                threads=threads,
                **common,
            )
        count = int(variant.get("InitialInstanceCount") or 1)
        return VariantDeployment(
            memory_mb=INSTANCE_MEMORY_MB,
            max_concurrency=INSTANCE_MAX_CONCURRENCY,
            min_workers=count,
            serverless=False,
            max_workers=count,
            threads=self.settings.worker_threads or max(1, cores // count),
            **common,
        )

    # --- status --------------------------------------------------------------------------------------

    def _set_status(self, endpoint: str, status: str, failure_reason: str | None) -> None:
        row = self.repo.get("endpoint", endpoint)
        if row is None:
            return
        doc = dict(row.doc)
        doc.pop("PendingDeploymentSummary", None)  # the update it described is over, either way
        doc["EndpointStatus"] = status
        now = self.clock()
        doc["LastModifiedTime"] = now
        if failure_reason is None:
            doc.pop("FailureReason", None)
        else:
            doc["FailureReason"] = failure_reason
        self.repo.update("endpoint", endpoint, doc, modified_at=now, status=status)

    def _mark_in_service(
        self,
        endpoint: str,
        config: Document,
        models: dict[str, Document],
        deployments: list[VariantDeployment],
    ) -> None:
        row = self.repo.get("endpoint", endpoint)
        if row is None:  # deleted while deploying
            self.router.remove_endpoint(endpoint)
            return
        now = self.clock()
        doc = dict(row.doc)
        doc.update(
            EndpointStatus="InService",
            EndpointConfigName=config["EndpointConfigName"],
            LastModifiedTime=now,
            ProductionVariants=[
                _variant_summary(v, models[v["ModelName"]], now) for v in config["ProductionVariants"]
            ],
        )
        doc.pop("FailureReason", None)
        doc.pop("PendingDeploymentSummary", None)
        doc["_zeroserve"] = {
            "deployments": [dataclasses.asdict(d) for d in deployments],
            "snapshot": {"config": config, "models": models},
        }
        self.repo.update("endpoint", endpoint, doc, modified_at=now, status="InService")


def _proof_key(deployment: VariantDeployment) -> str:
    return json.dumps([deployment.bundle_dir, sorted(deployment.env.items())])


def _variant_summary(variant: Document, model: Document, now: float) -> Document:
    summary: Document = {
        "VariantName": variant["VariantName"],
        "CurrentWeight": float(variant.get("InitialVariantWeight", 1.0)),
        "DesiredWeight": float(variant.get("InitialVariantWeight", 1.0)),
    }
    # zeroserve needs no container image; report one only when the model named it (botocore forbids "").
    if image := container_of(model).get("Image"):
        summary["DeployedImages"] = [{"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": now}]
    if serverless := variant.get("ServerlessConfig"):
        summary["CurrentServerlessConfig"] = dict(serverless)
        summary["DesiredServerlessConfig"] = dict(serverless)
    else:
        count = int(variant.get("InitialInstanceCount") or 1)
        summary["CurrentInstanceCount"] = count
        summary["DesiredInstanceCount"] = count
    return summary


def _is_generative(bundle: Path) -> bool:
    return task_names.is_generative(read_manifest(bundle).task)
