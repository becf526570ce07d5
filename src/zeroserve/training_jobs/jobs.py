"""Training jobs: CreateTrainingJob / DescribeTrainingJob / ListTrainingJobs / StopTrainingJob, and the task
that takes each job from Starting to a final status.

One owner: a job's document is written only here, by its run on the event loop (StopTrainingJob asks the run
to stop, and the run records Stopping itself), so two writers never race. Every run ends in Completed, Failed
or Stopped whatever it raises: the task boundary catches everything, logs the traceback and records why.
At most `max_training_jobs` run at once; the rest wait in Starting. After a restart, jobs that were running
are Failed (Stopping ones Stopped) and whatever is left of their processes is killed; queued ones start.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from zeroserve.artifacts.allowed_paths import AllowedRoots
from zeroserve.aws import listing
from zeroserve.aws.arns import arn
from zeroserve.aws.service_model import summary_members
from zeroserve.config import Settings
from zeroserve.control.actions import public
from zeroserve.database.repository import AlreadyExists, Document, Repository
from zeroserve.errors import ArtifactError, ResourceInUse, TrainingJobFailed, ValidationError
from zeroserve.logs.sink import LogSink
from zeroserve.training_jobs import spec as specs
from zeroserve.training_jobs import status, transfer
from zeroserve.training_jobs.builtin import BUILTIN_METRICS
from zeroserve.training_jobs.metrics import compile_definitions
from zeroserve.training_jobs.output import JobOutput
from zeroserve.training_jobs.process import JobProcess, Outcome, kill_leftover_job
from zeroserve.training_jobs.spec import JobSpec
from zeroserve.training_jobs.workspace import (
    Resources,
    Workspace,
    child_environment,
    entry_command,
    training_environment,
)

log = logging.getLogger("zeroserve.training_jobs")
Params = dict[str, Any]

_ECHOED_MEMBERS = (
    "HyperParameters",
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "VpcConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "DebugHookConfig",
    "ExperimentConfig",
    "DebugRuleConfigurations",
    "TensorBoardOutputConfig",
    "ProfilerConfig",
    "ProfilerRuleConfigurations",
    "Environment",
    "RetryStrategy",
    "RemoteDebugConfig",
    "InfraCheckConfig",
)


@dataclass
class _Run:
    spec: JobSpec
    doc: Document
    task: asyncio.Task[None] | None = None
    process: JobProcess | None = None
    stop_requested: bool = False
    started: bool = False  # holds a slot (a queued job does not)
    output: JobOutput | None = None


class TrainingJobs:
    def __init__(
        self,
        repo: Repository,
        logs: LogSink,
        settings: Settings,
        *,
        s3_client: Callable[[], Any],
        clock: Callable[[], float] = time.time,
        resources: Resources | None = None,
        allowed: AllowedRoots | None = None,
    ) -> None:
        self.repo = repo
        self.allowed = allowed
        self.logs = logs
        self.settings = settings
        self.clock = clock
        self.resources = resources or Resources.of_this_machine()
        self._make_s3 = s3_client
        self._s3: Any = None
        self._s3_lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._slots = asyncio.Semaphore(max(1, settings.max_training_jobs))
        self.actions: dict[str, Callable[[Params], Document]] = {
            "CreateTrainingJob": self.create,
            "DescribeTrainingJob": self.describe,
            "ListTrainingJobs": self.list,
            "StopTrainingJob": self.stop,
        }

    @property
    def root(self) -> Path:
        return self.settings.data_dir / "training"

    def _arn(self, name: str) -> str:
        return arn("training_job", name, region=self.settings.region, account_id=self.settings.account_id)

    # --- actions -------------------------------------------------------------------------------------

    def create(self, params: Params) -> Document:
        spec = specs.parse(params)
        compile_definitions(spec.metric_definitions)  # a bad regex is the caller's error, before anything
        self._check_local_paths(spec)
        now = self.clock()
        base: Document = {
            "TrainingJobName": spec.name,
            "TrainingJobArn": self._arn(spec.name),
            **{m: params[m] for m in _ECHOED_MEMBERS if m in params},
        }
        base.setdefault("StoppingCondition", {"MaxRuntimeInSeconds": spec.max_runtime_s})
        default_resources = {"InstanceType": spec.instance_type, "InstanceCount": 1, "VolumeSizeInGB": 30}
        base.setdefault("ResourceConfig", default_resources)
        doc = status.new_document(base, now)
        doc["_zeroserve"] = {"log_stream": f"{spec.name}/algo-1-{int(now)}"}
        try:
            self.repo.insert("training_job", spec.name, doc, created_at=now, status="InProgress")
        except AlreadyExists:
            raise ResourceInUse(
                "Training job names must be unique within an AWS account and region, and a training job "
                f"with this name already exists ({doc['TrainingJobArn']})"
            ) from None
        self._start(_Run(spec, doc))
        return {"TrainingJobArn": doc["TrainingJobArn"]}

    def _check_local_paths(self, spec: JobSpec) -> None:
        """file:// channels, source and output are read and written by the server itself: only inside the
        folders it may use (ZEROSERVE_ALLOWED_PATHS), as for a local ModelDataUrl."""
        if self.allowed is None:
            return
        locations = [(f"InputDataConfig[{c.name}] S3Uri", c.uri) for c in spec.channels]
        locations += [
            ("sagemaker_submit_directory", spec.submit_directory or ""),
            ("OutputDataConfig.S3OutputPath", spec.output_path),
        ]
        for member, uri in locations:
            if uri.startswith("file://"):
                try:
                    self.allowed.check(Path(unquote(urlsplit(uri).path)))
                except ArtifactError as err:
                    raise ValidationError(f"{member} {uri[:200]!r} {err.message}") from None

    def describe(self, params: Params) -> Document:
        row = self.repo.get("training_job", params["TrainingJobName"])
        if row is None:
            raise ValidationError("Requested resource not found.")
        return public(row.doc)

    def list(self, params: Params) -> Document:
        page, token = listing.select(self.repo.all("training_job"), params)
        members = summary_members("ListTrainingJobs", "TrainingJobSummaries")
        result: Document = {
            "TrainingJobSummaries": [{m: r.doc[m] for m in members if m in r.doc} for r in page]
        }
        if token:
            result["NextToken"] = token
        return result

    def stop(self, params: Params) -> Document:
        name = params["TrainingJobName"]
        row = self.repo.get("training_job", name)
        if row is None:
            raise ValidationError("Requested resource not found.")
        run = self._runs.get(name)
        if row.status in status.FINAL_STATUSES or run is None:
            raise ValidationError(
                f"The request was rejected because the training job is in status {row.status}."
            )
        if not run.stop_requested:
            run.stop_requested = True
            self._write(run, status.advance(run.doc, "Stopping", self.clock()))
            if not run.started:  # still waiting for a slot: nothing runs, so it is stopped now
                self._end(run, "Stopped")
            elif run.process is not None:
                run.process.stop()
        return {}

    # --- lifecycle ------------------------------------------------------------------------------------

    def restore(self) -> None:
        """After a restart: no job stays InProgress with nothing behind it."""
        for row in self.repo.all("training_job"):
            if row.status not in ("InProgress", "Stopping"):
                continue
            doc = row.doc
            internal = doc.get("_zeroserve", {})
            if pgid := internal.get("pgid"):
                killed = kill_leftover_job(int(pgid), f"TRAINING_JOB_ARN={doc['TrainingJobArn']}")
                if killed:
                    log.warning("killed %d leftover process(es) of training job %s", killed, row.name)
            now = self.clock()
            if row.status == "Stopping":
                self._save(row.name, status.finish(doc, "Stopped", now))
            elif doc.get("SecondaryStatus") == "Starting" and "pgid" not in internal:
                self._start(_Run(specs.parse({**doc, "TrainingJobName": row.name}), doc))  # never ran
            else:
                self._save(
                    row.name,
                    status.finish(
                        doc,
                        "Failed",
                        now,
                        failure_reason=(
                            "InternalServerError: the zeroserve server stopped while this job ran; its "
                            "processes were ended. Create the job again under a new name."
                        ),
                    ),
                )
            shutil.rmtree(self.root / row.name, ignore_errors=True)

    async def close(self) -> None:
        """Server shutdown: end every run (each records Failed with the reason)."""
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait(self, name: str) -> None:
        run = self._runs.get(name)
        if run is not None and run.task is not None:
            await asyncio.wait({run.task})

    def _start(self, run: _Run) -> None:
        self._runs[run.spec.name] = run
        run.task = asyncio.get_running_loop().create_task(
            self._guarded(run), name=f"training:{run.spec.name}"
        )

    # --- the run ---------------------------------------------------------------------------------------

    async def _guarded(self, run: _Run) -> None:
        name = run.spec.name
        try:
            async with self._slots:
                if run.stop_requested:  # stopped while it waited; StopTrainingJob recorded Stopped
                    return
                run.started = True
                await self._execute(run)
        except asyncio.CancelledError:
            reason = "InternalServerError: the zeroserve server shut down while this job ran."
            self._end(run, "Failed", failure_reason=reason)
            raise
        except TrainingJobFailed as exc:
            log.info("training job %s failed: %s", name, exc.message)
            self._end(run, "Failed", failure_reason=exc.message)
        except Exception as exc:
            log.exception("training job %s failed unexpectedly", name)
            self._end(run, "Failed", failure_reason=f"InternalServerError: {type(exc).__name__}: {exc}")
        finally:
            self._runs.pop(name, None)
            shutil.rmtree(self.root / name, ignore_errors=True)

    def _end(self, run: _Run, final_status: str, **details: Any) -> None:
        """Record the final status, once: a job already Completed, Failed or Stopped keeps what it has."""
        if run.doc["TrainingJobStatus"] not in status.FINAL_STATUSES:
            self._write(run, status.finish(run.doc, final_status, self.clock(), **details))

    async def _execute(self, run: _Run) -> None:
        spec = run.spec
        workspace = Workspace(self.root / spec.name)
        self._write(run, status.advance(run.doc, "Downloading", self.clock()))
        await asyncio.to_thread(self._prepare, spec, workspace)
        if run.stop_requested:
            self._end(run, "Stopped")
            return
        self._write(run, status.advance(run.doc, "Training", self.clock()))
        outcome = await self._train(run, workspace)
        await self._conclude(run, workspace, outcome)

    def _prepare(self, spec: JobSpec, workspace: Workspace) -> None:
        """Blocking: the job folder, its inputs and its code."""
        shutil.rmtree(workspace.root, ignore_errors=True)
        workspace.create()
        workspace.write_config(spec)
        for channel in spec.channels:
            transfer.download_channel(channel, workspace.channel_dir(channel.name), self._s3_client)
        if source := spec.submit_directory:
            transfer.fetch_source(source, workspace.code_dir, self._s3_client)
        if spec.program and not spec.builtin and not spec.container_entrypoint:
            entry = workspace.code_dir / spec.program
            if not entry.resolve().is_relative_to(workspace.code_dir.resolve()) or not entry.is_file():
                where = source or "the job's code folder"
                raise TrainingJobFailed(
                    f"ClientError: the entry point {spec.program!r} is not in the source directory {where}."
                )
        requirements = workspace.code_dir / "requirements.txt"
        if requirements.is_file():
            from zeroserve.runtimes.requirements import missing_requirements

            if missing := missing_requirements(requirements):
                raise TrainingJobFailed(
                    "ClientError: requirements.txt cannot be installed offline and is not satisfied by the "
                    f"installed packages: missing {', '.join(missing)}"
                )

    @property
    def _s3_client(self) -> Any:
        with self._s3_lock:  # making a boto3 client is not thread-safe; using one is
            if self._s3 is None:
                self._s3 = self._make_s3()
            return self._s3

    async def _train(self, run: _Run, workspace: Workspace) -> Outcome:
        spec = run.spec
        definitions = spec.metric_definitions or (BUILTIN_METRICS if spec.builtin else ())
        run.output = JobOutput(self.logs, run.doc["_zeroserve"]["log_stream"], definitions, self.clock)
        environment = training_environment(
            spec, workspace, self.resources, job_arn=run.doc["TrainingJobArn"], region=self.settings.region
        )
        run.process = JobProcess(
            entry_command(spec, workspace),
            cwd=workspace.code_dir,
            env=child_environment(environment, workspace.code_dir),
            on_line=run.output.on_line,
            memory_limit_mb=self.settings.training_memory_mb,
            stop_grace_s=self.settings.training_stop_grace_s,
        )
        elapsed = self.clock() - run.doc.get("TrainingStartTime", self.clock())
        try:
            try:
                pgid = await run.process.start()
            except OSError as err:
                raise TrainingJobFailed(
                    f"ClientError: could not start {run.process.command[0]}: {err}"
                ) from None
            run.doc["_zeroserve"] = {**run.doc["_zeroserve"], "pgid": pgid}
            self._write(run, run.doc)
            if run.stop_requested:
                run.process.stop()
            outcome = await run.process.wait(max(0.1, spec.max_runtime_s - elapsed))
        finally:
            run.output.flush()
        run.doc = {**run.doc, "FinalMetricDataList": run.output.metrics.final()}
        return outcome

    async def _conclude(self, run: _Run, workspace: Workspace, outcome: Outcome) -> None:
        spec = run.spec
        stopped = run.stop_requested or outcome.stop_requested
        if outcome.returncode != 0 and not (stopped or outcome.timed_out):
            assert run.output is not None
            raise TrainingJobFailed(run.output.failure_reason(workspace, outcome))
        if outcome.timed_out or stopped:
            # SageMaker keeps what the script saved before it was stopped.
            if any(workspace.model_dir.iterdir()):
                run.doc["ModelArtifacts"] = {"S3ModelArtifacts": await self._upload(spec, workspace)}
            secondary = "MaxRuntimeExceeded" if outcome.timed_out else "Stopped"
            self._write(run, status.finish(run.doc, "Stopped", self.clock(), secondary=secondary))
            return
        self._write(run, status.advance(run.doc, "Uploading", self.clock()))
        run.doc["ModelArtifacts"] = {"S3ModelArtifacts": await self._upload(spec, workspace)}
        self._write(run, status.finish(run.doc, "Completed", self.clock()))

    async def _upload(self, spec: JobSpec, workspace: Workspace) -> str:
        return await asyncio.to_thread(
            transfer.upload_outputs,
            workspace.model_dir,
            workspace.output_data_dir,
            spec.output_path,
            spec.name,
            self._s3_client,
        )

    # --- persistence --------------------------------------------------------------------------------------

    def _write(self, run: _Run, doc: Document) -> None:
        run.doc = doc
        self._save(run.spec.name, doc)

    def _save(self, name: str, doc: Document) -> None:
        self.repo.update(
            "training_job", name, doc, modified_at=doc["LastModifiedTime"], status=doc["TrainingJobStatus"]
        )
