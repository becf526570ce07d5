"""Production variant rules that SageMaker enforces beyond botocore's shapes, and the variant summaries
that DescribeEndpoint shows for a pending update.

botocore already checks types and ranges (MemorySizeInMB 1024..6144, MaxConcurrency 1..200); what it cannot
express lives here: memory in whole GB steps, ProvisionedConcurrency <= MaxConcurrency, one of serverless or
instance capacity, unique variant names, and a ModelName (optional in the model only because inference
component endpoints, which zeroserve does not offer, leave it out).
"""

from __future__ import annotations

from typing import Any

from zeroserve.errors import ValidationError

Document = dict[str, Any]
SERVERLESS_MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
DEFAULT_VARIANT_WEIGHT = 1.0


def check_variants(variants: list[Document]) -> list[Document]:
    """The variants as stored (weights defaulted), or ValidationError naming the first broken rule."""
    seen: set[str] = set()
    checked = []
    for index, variant in enumerate(variants, start=1):
        name = variant["VariantName"]
        if name in seen:
            raise ValidationError(f"VariantName {name} is used more than once in ProductionVariants.")
        seen.add(name)
        if not variant.get("ModelName"):
            raise ValidationError(
                f"Value null at 'productionVariants.{index}.member.modelName' failed to satisfy constraint: "
                "Member must not be null (zeroserve has no inference components)"
            )
        _check_capacity(variant, index)
        checked.append({"InitialVariantWeight": DEFAULT_VARIANT_WEIGHT, **variant})
    return checked


def _check_capacity(variant: Document, index: int) -> None:
    serverless = variant.get("ServerlessConfig")
    name = variant["VariantName"]
    if serverless and variant.get("InstanceType"):
        raise ValidationError(f"Variant {name} cannot have both a ServerlessConfig and an InstanceType.")
    if serverless:
        memory = serverless["MemorySizeInMB"]
        if memory not in SERVERLESS_MEMORY_SIZES_MB:
            raise ValidationError(
                f"Value '{memory}' at 'productionVariants.{index}.member.serverlessConfig.memorySizeInMB' "
                f"failed to satisfy constraint: Member must be one of {list(SERVERLESS_MEMORY_SIZES_MB)}"
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


def pending_summary(config: Document, started_at: float) -> Document:
    """DescribeEndpoint's PendingDeploymentSummary while an UpdateEndpoint prepares `config`."""
    variants = []
    for variant in config["ProductionVariants"]:
        summary: Document = {
            "VariantName": variant["VariantName"],
            "DesiredWeight": float(variant.get("InitialVariantWeight", DEFAULT_VARIANT_WEIGHT)),
            "VariantStatus": [{"Status": "Creating", "StartTime": started_at}],
        }
        if serverless := variant.get("ServerlessConfig"):
            summary["DesiredServerlessConfig"] = dict(serverless)
        else:
            summary["InstanceType"] = variant["InstanceType"]
            summary["DesiredInstanceCount"] = variant["InitialInstanceCount"]
        variants.append(summary)
    return {
        "EndpointConfigName": config["EndpointConfigName"],
        "ProductionVariants": variants,
        "StartTime": started_at,
    }
