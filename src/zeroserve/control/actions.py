"""SageMaker control-plane actions over the store: one method per action, params in, response dict out.

Every action validates against botocore's model first, then checks references, then writes once, so a
rejected call changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from zeroserve.control import listing
from zeroserve.control.arns import NOUN, arn
from zeroserve.control.lifecycle import EndpointLifecycle
from zeroserve.control.validation import validate
from zeroserve.errors import ValidationError
from zeroserve.store.repository import AlreadyExists, Document, Repository, Row

SERVERLESS_MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
Params = dict[str, Any]


def public(doc: Document) -> Document:
    """The document as clients see it: internal bookkeeping stripped."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


class ControlPlane:
    def __init__(
        self,
        repo: Repository,
        lifecycle: EndpointLifecycle,
        *,
        region: str,
        account_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.lifecycle = lifecycle
        self.region = region
        self.account_id = account_id
        self.clock = clock
        self.actions: dict[str, Callable[[Params], Document]] = {
            "CreateModel": self.create_model,
            "DescribeModel": self.describe_model,
            "ListModels": self.list_models,
            "DeleteModel": self.delete_model,
            "CreateEndpointConfig": self.create_endpoint_config,
            "DescribeEndpointConfig": self.describe_endpoint_config,
            "ListEndpointConfigs": self.list_endpoint_configs,
            "DeleteEndpointConfig": self.delete_endpoint_config,
            "CreateEndpoint": self.create_endpoint,
            "DescribeEndpoint": self.describe_endpoint,
            "ListEndpoints": self.list_endpoints,
            "UpdateEndpoint": self.update_endpoint,
            "DeleteEndpoint": self.delete_endpoint,
        }

    def handle(self, action: str, params: Params) -> Document:
        method = self.actions.get(action)
        if method is None:
            raise ValidationError(f"Action {action} is not supported by zeroserve.")
        validate(action, params)
        return method(params)

    # --- helpers -------------------------------------------------------------------------------------

    def _arn(self, kind: str, name: str) -> str:
        return arn(kind, name, region=self.region, account_id=self.account_id)

    def _require(self, kind: str, name: str) -> Row:
        row = self.repo.get(kind, name)
        if row is None:
            raise ValidationError(f'Could not find {NOUN[kind]} "{self._arn(kind, name)}".')
        return row

    def _insert(self, kind: str, name: str, doc: Document, status: str = "") -> None:
        try:
            self.repo.insert(kind, name, doc, created_at=doc["CreationTime"], status=status)
        except AlreadyExists:
            raise ValidationError(
                f'Cannot create already existing {NOUN[kind]} "{self._arn(kind, name)}".'
            ) from None

    def _delete(self, kind: str, name: str) -> Document:
        if not self.repo.delete(kind, name):
            raise ValidationError(f'Could not find {NOUN[kind]} "{self._arn(kind, name)}".')
        return {}

    # --- models --------------------------------------------------------------------------------------

    def create_model(self, p: Params) -> Document:
        name = p["ModelName"]
        container = p.get("PrimaryContainer") or (p.get("Containers") or [None])[0]
        if container is None:
            raise ValidationError("Either PrimaryContainer or Containers must be specified.")
        env = container.get("Environment") or {}
        if not container.get("ModelDataUrl") and not env.get("HF_MODEL_ID"):
            raise ValidationError(
                "PrimaryContainer.ModelDataUrl is required (s3://, file:// or a path), or "
                "Environment.HF_MODEL_ID naming a local model folder."
            )
        doc: Document = {
            "ModelName": name,
            "ModelArn": self._arn("model", name),
            "CreationTime": self.clock(),
            "EnableNetworkIsolation": bool(p.get("EnableNetworkIsolation", False)),
        }
        for member in ("PrimaryContainer", "Containers", "ExecutionRoleArn", "InferenceExecutionConfig", "VpcConfig"):
            if member in p:
                doc[member] = p[member]
        self._insert("model", name, doc)
        return {"ModelArn": doc["ModelArn"]}

    def describe_model(self, p: Params) -> Document:
        return public(self._require("model", p["ModelName"]).doc)

    def list_models(self, p: Params) -> Document:
        page, token = listing.select(self.repo.all("model"), p)
        result: Document = {
            "Models": [{k: r.doc[k] for k in ("ModelName", "ModelArn", "CreationTime")} for r in page]
        }
        if token:
            result["NextToken"] = token
        return result

    def delete_model(self, p: Params) -> Document:
        # As in SageMaker, endpoints already running keep the model they were created with.
        return self._delete("model", p["ModelName"])

    # --- endpoint configs ------------------------------------------------------------------------------

    def create_endpoint_config(self, p: Params) -> Document:
        name = p["EndpointConfigName"]
        variants = [dict(v) for v in p["ProductionVariants"]]
        seen: set[str] = set()
        for variant in variants:
            self._check_variant(variant)
            if variant["VariantName"] in seen:
                raise ValidationError(f"VariantName {variant['VariantName']} is used more than once.")
            seen.add(variant["VariantName"])
            variant.setdefault("InitialVariantWeight", 1.0)
        doc: Document = {
            "EndpointConfigName": name,
            "EndpointConfigArn": self._arn("endpoint_config", name),
            "ProductionVariants": variants,
            "CreationTime": self.clock(),
        }
        for member in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExecutionRoleArn"):
            if member in p:
                doc[member] = p[member]
        self._insert("endpoint_config", name, doc)
        return {"EndpointConfigArn": doc["EndpointConfigArn"]}

    def _check_variant(self, variant: Document) -> None:
        self._require("model", variant["ModelName"])
        serverless = variant.get("ServerlessConfig")
        name = variant["VariantName"]
        if serverless:
            memory = serverless.get("MemorySizeInMB")
            if memory not in SERVERLESS_MEMORY_SIZES_MB:
                raise ValidationError(
                    f"Value '{memory}' at 'productionVariants.{name}.serverlessConfig.memorySizeInMB' failed to "
                    f"satisfy constraint: Member must be one of {list(SERVERLESS_MEMORY_SIZES_MB)}"
                )
            provisioned = serverless.get("ProvisionedConcurrency")
            if provisioned is not None and provisioned > serverless["MaxConcurrency"]:
                raise ValidationError(
                    f"ProvisionedConcurrency ({provisioned}) of variant {name} must not exceed "
                    f"MaxConcurrency ({serverless['MaxConcurrency']})."
                )
        elif not (variant.get("InstanceType") and variant.get("InitialInstanceCount")):
            raise ValidationError(
                f"Variant {name} needs a ServerlessConfig, or an InstanceType with an InitialInstanceCount."
            )

    def describe_endpoint_config(self, p: Params) -> Document:
        return public(self._require("endpoint_config", p["EndpointConfigName"]).doc)

    def list_endpoint_configs(self, p: Params) -> Document:
        page, token = listing.select(self.repo.all("endpoint_config"), p)
        result: Document = {
            "EndpointConfigs": [
                {k: r.doc[k] for k in ("EndpointConfigName", "EndpointConfigArn", "CreationTime")} for r in page
            ]
        }
        if token:
            result["NextToken"] = token
        return result

    def delete_endpoint_config(self, p: Params) -> Document:
        return self._delete("endpoint_config", p["EndpointConfigName"])

    # --- endpoints -----------------------------------------------------------------------------------

    def _snapshot(self, config_name: str) -> tuple[Document, dict[str, Document]]:
        """The config and its models as they are now: an endpoint keeps serving them even if deleted."""
        config = self._require("endpoint_config", config_name).doc
        models = {v["ModelName"]: self._require("model", v["ModelName"]).doc for v in config["ProductionVariants"]}
        return config, models

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

    def describe_endpoint(self, p: Params) -> Document:
        return public(self._require("endpoint", p["EndpointName"]).doc)

    def list_endpoints(self, p: Params) -> Document:
        page, token = listing.select(self.repo.all("endpoint"), p)
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        result: Document = {"Endpoints": [{k: r.doc[k] for k in keys} for r in page]}
        if token:
            result["NextToken"] = token
        return result

    def update_endpoint(self, p: Params) -> Document:
        name = p["EndpointName"]
        row = self._require("endpoint", name)
        if row.status != "InService":
            raise ValidationError(
                f'Cannot update in-progress endpoint "{self._arn("endpoint", name)}" (status {row.status}).'
            )
        config, models = self._snapshot(p["EndpointConfigName"])
        doc = dict(row.doc)
        now = self.clock()
        doc.update(EndpointStatus="Updating", LastModifiedTime=now)
        doc.pop("FailureReason", None)
        desired = {v["VariantName"]: v for v in config["ProductionVariants"]}
        for summary in doc.get("ProductionVariants", []):
            if (new := desired.get(summary["VariantName"])) and new.get("ServerlessConfig"):
                summary["DesiredServerlessConfig"] = dict(new["ServerlessConfig"])
        self.repo.update("endpoint", name, doc, modified_at=now, status="Updating")
        self.lifecycle.start(name, config, models, updating=True)
        return {"EndpointArn": doc["EndpointArn"]}

    def delete_endpoint(self, p: Params) -> Document:
        name = p["EndpointName"]
        self._require("endpoint", name)
        self.lifecycle.cancel(name)
        self.lifecycle.router.remove_endpoint(name)
        return self._delete("endpoint", name)
