"""What a CreateTrainingJob request asks for, parsed once into typed values the rest of training reads.

botocore's model has already checked shapes and ranges; this adds what SageMaker checks beyond them (and
what zeroserve needs: an entry point it can run, data and output locations it can reach).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from zeroserve.errors import ValidationError

#: The packaged sentiment trainer (`zeroserve train` as a job), named in AlgorithmSpecification.TrainingImage.
BUILTIN_TRAINER_IMAGE = "zeroserve/sentiment-trainer"
DEFAULT_MAX_RUNTIME_S = 86400  # SageMaker's default StoppingCondition
_FRAMEWORK_PREFIX = "sagemaker_"
_LOCATION_SCHEMES = ("s3://", "file://")


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    uri: str
    data_type: str = "S3Prefix"
    content_type: str | None = None
    compression: str | None = None


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    regex: str


@dataclass(frozen=True)
class JobSpec:
    name: str
    image: str
    #: Hyperparameters as sent (the SDK JSON-encodes every value).
    hyperparameters: dict[str, str]
    channels: tuple[ChannelSpec, ...]
    output_path: str
    max_runtime_s: int
    environment: dict[str, str] = field(default_factory=dict)
    metric_definitions: tuple[MetricDefinition, ...] = ()
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    container_entrypoint: tuple[str, ...] = ()
    container_arguments: tuple[str, ...] = ()

    @property
    def decoded_hyperparameters(self) -> dict[str, Any]:
        """Each value JSON-decoded where it parses, else the raw string (as the training toolkit does)."""
        return {key: _json_or_raw(value) for key, value in self.hyperparameters.items()}

    @property
    def user_hyperparameters(self) -> dict[str, Any]:
        """What the script receives: the SDK's own `sagemaker_*` entries are the framework's."""
        return {k: v for k, v in self.decoded_hyperparameters.items() if not k.startswith(_FRAMEWORK_PREFIX)}

    @property
    def program(self) -> str | None:
        value = self.decoded_hyperparameters.get("sagemaker_program") or self.environment.get(
            "SAGEMAKER_PROGRAM"
        )
        return str(value) if value else None

    @property
    def submit_directory(self) -> str | None:
        value = self.decoded_hyperparameters.get("sagemaker_submit_directory") or self.environment.get(
            "SAGEMAKER_SUBMIT_DIRECTORY"
        )
        return str(value) if value else None

    @property
    def builtin(self) -> bool:
        return self.image.split(":", 1)[0] == BUILTIN_TRAINER_IMAGE


def _json_or_raw(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _check_location(value: str, member: str) -> str:
    if not value.startswith(_LOCATION_SCHEMES):
        raise ValidationError(f"{member} must be an s3:// or file:// URL, got {value[:200]!r}.")
    if value.startswith("s3://") and not value[len("s3://") :].split("/", 1)[0]:
        raise ValidationError(f"{member} names no bucket: {value[:200]!r}.")
    return value


def parse(params: dict[str, Any]) -> JobSpec:
    algorithm = params.get("AlgorithmSpecification") or {}
    image = _training_image(algorithm)
    channels = _channels(params.get("InputDataConfig") or [])
    output_path = _check_location(params["OutputDataConfig"]["S3OutputPath"], "OutputDataConfig.S3OutputPath")
    resources = params.get("ResourceConfig") or {}
    stopping = params.get("StoppingCondition") or {}
    spec = JobSpec(
        name=params["TrainingJobName"],
        image=image,
        hyperparameters=dict(params.get("HyperParameters") or {}),
        channels=channels,
        output_path=output_path,
        max_runtime_s=int(stopping.get("MaxRuntimeInSeconds") or DEFAULT_MAX_RUNTIME_S),
        environment=dict(params.get("Environment") or {}),
        metric_definitions=tuple(
            MetricDefinition(m["Name"], m["Regex"]) for m in algorithm.get("MetricDefinitions") or []
        ),
        instance_type=str(resources.get("InstanceType") or "ml.m5.xlarge"),
        instance_count=int(resources.get("InstanceCount") or 1),
        container_entrypoint=tuple(algorithm.get("ContainerEntrypoint") or ()),
        container_arguments=tuple(algorithm.get("ContainerArguments") or ()),
    )
    _check_runnable(spec)
    return spec


def _training_image(algorithm: dict[str, Any]) -> str:
    image = str(algorithm.get("TrainingImage") or "")
    if not image and not algorithm.get("AlgorithmName"):
        raise ValidationError("AlgorithmSpecification.TrainingImage is required.")
    if algorithm.get("AlgorithmName"):
        raise ValidationError(
            "AlgorithmSpecification.AlgorithmName (marketplace algorithms) is not supported by zeroserve; "
            f"name a TrainingImage (any image runs in script mode, or {BUILTIN_TRAINER_IMAGE})."
        )
    return image


def _channels(config: list[dict[str, Any]]) -> tuple[ChannelSpec, ...]:
    channels = []
    seen: set[str] = set()
    for channel in config:
        name = channel["ChannelName"]
        if name in seen:
            raise ValidationError(f"Channel names must be unique: {name!r} appears twice in InputDataConfig.")
        seen.add(name)
        channels.append(_channel(name, channel))
    return tuple(channels)


def _channel(name: str, channel: dict[str, Any]) -> ChannelSpec:
    source = channel["DataSource"].get("S3DataSource")
    if source is None:
        raise ValidationError(f"Channel {name!r}: only S3DataSource is supported (s3:// or file:// S3Uri).")
    if source["S3DataType"] not in ("S3Prefix", "S3Object"):
        raise ValidationError(
            f"Channel {name!r}: S3DataType {source['S3DataType']} is not supported; use S3Prefix."
        )
    uri = _check_location(source["S3Uri"], f"InputDataConfig[{name}].DataSource.S3DataSource.S3Uri")
    return ChannelSpec(
        name=name,
        uri=uri,
        data_type=source["S3DataType"],
        content_type=channel.get("ContentType"),
        compression=channel.get("CompressionType"),
    )


def _check_runnable(spec: JobSpec) -> None:
    """What zeroserve needs beyond SageMaker's checks: one host, and an entry point it can run."""
    if spec.instance_count != 1:
        raise ValidationError(
            f"ResourceConfig.InstanceCount {spec.instance_count}: zeroserve runs a job on one host; use 1."
        )
    if not (spec.builtin or spec.program or spec.container_entrypoint):
        raise ValidationError(
            "No entry point: zeroserve runs training in script mode. Pass the SageMaker SDK's "
            "sagemaker_program (and sagemaker_submit_directory) hyperparameters, a SAGEMAKER_PROGRAM "
            f"Environment entry, AlgorithmSpecification.ContainerEntrypoint, or TrainingImage "
            f"{BUILTIN_TRAINER_IMAGE}."
        )
