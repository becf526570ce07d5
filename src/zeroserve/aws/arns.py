"""SageMaker ARNs. SageMaker lower-cases the resource name in an ARN; so do we."""

from __future__ import annotations

_RESOURCE = {
    "model": "model",
    "endpoint_config": "endpoint-config",
    "endpoint": "endpoint",
    "training_job": "training-job",
}
NOUN = {
    "model": "model",
    "endpoint_config": "endpoint configuration",
    "endpoint": "endpoint",
    "training_job": "training job",
}


def arn(kind: str, name: str, *, region: str, account_id: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account_id}:{_RESOURCE[kind]}/{name.lower()}"
