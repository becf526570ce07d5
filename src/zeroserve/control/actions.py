"""SageMaker control-plane actions over the database: one method per action, params in, response dict out.

Every action validates against botocore's model first, then checks references, then writes once, so a
rejected call changes nothing. Referential rules follow SageMaker (see docs/api-coverage.md): a config must
name existing models and an endpoint an existing config, but deleting a model or config that an endpoint
uses is allowed, because the endpoint keeps the snapshot it was deployed from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from zeroserve.aws import listing
from zeroserve.aws.arns import NOUN, arn
from zeroserve.aws.service_model import summary_members
from zeroserve.aws.validation import validate
from zeroserve.control.environment import check_environment
from zeroserve.control.lifecycle import EndpointLifecycle
from zeroserve.control.variants import check_variants, pending_summary
from zeroserve.database.repository import AlreadyExists, Document, Repository, Row
from zeroserve.errors import ArtifactError, ValidationError

Params = dict[str, Any]
# Members stored as given and echoed by Describe*; the rest of each document is built here.
_MODEL_MEMBERS = (
    "PrimaryContainer",
    "Containers",
    "ExecutionRoleArn",
    "InferenceExecutionConfig",
    "VpcConfig",
)
_CONFIG_MEMBERS = (
    "DataCaptureConfig",
    "KmsKeyId",
    "AsyncInferenceConfig",
    "ExecutionRoleArn",
    "VpcConfig",
    "EnableNetworkIsolation",
    "ExplainerConfig",
    "MetricsConfig",
)
_UPDATABLE_STATUSES = ("InService",)


def public(doc: Document) -> Document:
    """The document as clients see it: internal bookkeeping stripped."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _copy_members(params: Params, members: tuple[str, ...]) -> Document:
    return {member: params[member] for member in members if member in params}


class ControlPlane:
    def __init__(
        self,
        repo: Repository,
        lifecycle: EndpointLifecycle,
        *,
        region: str,
        account_id: str,
        clock: Callable[[], float] = time.time,
        extra_actions: Mapping[str, Callable[[Params], Document]] | None = None,
    ) -> None:
        self.repo = repo
        self.lifecycle = lifecycle
        self.region = region
        self.account_id = account_id
        self.clock = clock
        self.actions: dict[str, Callable[[Params], Document]] = {
            "CreateModel": self.create_model,
            "DescribeModel": lambda p: self._describe("model", p["ModelName"]),
            "ListModels": lambda p: self._list("model", "ListModels", "Models", p),
            "DeleteModel": lambda p: self._delete("model", p["ModelName"]),
            "CreateEndpointConfig": self.create_endpoint_config,
            "DescribeEndpointConfig": lambda p: self._describe("endpoint_config", p["EndpointConfigName"]),
            "ListEndpointConfigs": lambda p: self._list(
                "endpoint_config", "ListEndpointConfigs", "EndpointConfigs", p
            ),
            "DeleteEndpointConfig": lambda p: self._delete("endpoint_config", p["EndpointConfigName"]),
            "CreateEndpoint": self.create_endpoint,
            "DescribeEndpoint": lambda p: self._describe("endpoint", p["EndpointName"]),
            "ListEndpoints": lambda p: self._list("endpoint", "ListEndpoints", "Endpoints", p),
            "UpdateEndpoint": self.update_endpoint,
            "DeleteEndpoint": self.delete_endpoint,
            **(extra_actions or {}),  # training jobs (zeroserve.training_jobs.jobs)
        }

    def handle(self, action: str, params: Params) -> Document:
        method = self.actions.get(action)
        if method is None:
            raise ValidationError(f"Action {action} is not supported by zeroserve.")
        validate(action, params)
        return method(params)

    # --- shared by every kind --------------------------------------------------------------------------

    def _arn(self, kind: str, name: str) -> str:
        return arn(kind, name, region=self.region, account_id=self.account_id)

    def _not_found(self, kind: str, name: str) -> ValidationError:
        return ValidationError(f'Could not find {NOUN[kind]} "{self._arn(kind, name)}".')

    def _require(self, kind: str, name: str) -> Row:
        row = self.repo.get(kind, name)
        if row is None:
            raise self._not_found(kind, name)
        return row

    def _insert(self, kind: str, name: str, doc: Document, status: str = "") -> None:
        try:
            self.repo.insert(kind, name, doc, created_at=doc["CreationTime"], status=status)
        except AlreadyExists:
            raise ValidationError(
                f'Cannot create already existing {NOUN[kind]} "{self._arn(kind, name)}".'
            ) from None

    def _describe(self, kind: str, name: str) -> Document:
        return public(self._require(kind, name).doc)

    def _list(self, kind: str, action: str, key: str, params: Params) -> Document:
        page, token = listing.select(self.repo.all(kind), params)
        members = summary_members(action, key)
        result: Document = {key: [{m: r.doc[m] for m in members if m in r.doc} for r in page]}
        if token:
            result["NextToken"] = token
        return result

    def _delete(self, kind: str, name: str) -> Document:
        if not self.repo.delete(kind, name):
            raise self._not_found(kind, name)
        return {}

    # --- models and endpoint configs ------------------------------------------------------------------

    def create_model(self, p: Params) -> Document:
        name = p["ModelName"]
        container = p.get("PrimaryContainer") or (p.get("Containers") or [None])[0]
        if container is None:
            raise ValidationError("Either PrimaryContainer or Containers must be specified.")
        env = container.get("Environment") or {}
        check_environment(p)
        if not container.get("ModelDataUrl") and not env.get("HF_MODEL_ID"):
            raise ValidationError(
                "PrimaryContainer.ModelDataUrl is required (s3://, file:// or a path), or "
                "Environment.HF_MODEL_ID naming a local model folder."
            )
        url, label = (
            (container["ModelDataUrl"], "ModelDataUrl")
            if container.get("ModelDataUrl")
            else (env["HF_MODEL_ID"], "HF_MODEL_ID")
        )
        try:
            self.lifecycle.artifacts.check_source(str(url), label=label)
        except ArtifactError as exc:
            raise ValidationError(exc.message) from None
        doc: Document = {
            "ModelName": name,
            "ModelArn": self._arn("model", name),
            "CreationTime": self.clock(),
            "EnableNetworkIsolation": bool(p.get("EnableNetworkIsolation", False)),
            **_copy_members(p, _MODEL_MEMBERS),
        }
        self._insert("model", name, doc)
        return {"ModelArn": doc["ModelArn"]}

    def create_endpoint_config(self, p: Params) -> Document:
        name = p["EndpointConfigName"]
        variants = check_variants(p["ProductionVariants"])
        for variant in variants:
            self._require("model", variant["ModelName"])
        doc: Document = {
            "EndpointConfigName": name,
            "EndpointConfigArn": self._arn("endpoint_config", name),
            "ProductionVariants": variants,
            "CreationTime": self.clock(),
            **_copy_members(p, _CONFIG_MEMBERS),
        }
        self._insert("endpoint_config", name, doc)
        return {"EndpointConfigArn": doc["EndpointConfigArn"]}

    # --- endpoints -----------------------------------------------------------------------------------

    def _snapshot(self, config_name: str) -> tuple[Document, dict[str, Document]]:
        """The config and its models as they are now: an endpoint keeps serving them even if deleted."""
        config = self._require("endpoint_config", config_name).doc
        names = {v["ModelName"] for v in config["ProductionVariants"]}
        return config, {name: self._require("model", name).doc for name in names}

    def create_endpoint(self, p: Params) -> Document:
        name = p["EndpointName"]
        config, models = self._snapshot(p["EndpointConfigName"])
        now = self.clock()
        doc: Document = {
            "EndpointName": name,
            "EndpointArn": self._arn("endpoint", name),
            "EndpointConfigName": config["EndpointConfigName"],
            "EndpointStatus": "Creating",
            "CreationTime": now,
            "LastModifiedTime": now,
            "_zeroserve": {"snapshot": {"config": config, "models": models}},
        }
        self._insert("endpoint", name, doc, status="Creating")
        self.lifecycle.start(name, config, models, updating=False)
        return {"EndpointArn": doc["EndpointArn"]}

    def update_endpoint(self, p: Params) -> Document:
        """Blue/green: the old variants keep serving while the new config is prepared (see lifecycle)."""
        name = p["EndpointName"]
        row = self._require("endpoint", name)
        if row.status not in _UPDATABLE_STATUSES:
            state = "failed" if row.status == "Failed" else "in-progress"
            raise ValidationError(f'Cannot update {state} endpoint "{self._arn("endpoint", name)}".')
        config, models = self._snapshot(p["EndpointConfigName"])
        now = self.clock()
        doc = {**row.doc, "EndpointStatus": "Updating", "LastModifiedTime": now}
        doc["PendingDeploymentSummary"] = pending_summary(config, now)
        doc.pop("FailureReason", None)
        self.repo.update("endpoint", name, doc, modified_at=now, status="Updating")
        self.lifecycle.start(name, config, models, updating=True)
        return {"EndpointArn": doc["EndpointArn"]}

    def delete_endpoint(self, p: Params) -> Document:
        # Any status may be deleted, Failed included; a deployment in progress is cancelled.
        name = p["EndpointName"]
        self._require("endpoint", name)
        self.lifecycle.cancel(name)
        self.lifecycle.router.remove_endpoint(name)
        return self._delete("endpoint", name)
