"""The job folder, laid out as a SageMaker training container's `/opt/ml`, and the environment and
command line the SageMaker training toolkit gives a script-mode entry point.

    <root>/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json
    <root>/input/data/<channel>/...     <root>/code/...     <root>/model/
    <root>/output/data/   <root>/output/failure   <root>/output/intermediate/

Everything here is pure over the spec and the folder's path, so it is unit-tested without a process.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zeroserve.training_jobs.spec import JobSpec

HOST = "algo-1"
_LOG_LEVEL_INFO = 20


@dataclass(frozen=True)
class Resources:
    cpus: int
    gpus: int

    @classmethod
    def of_this_machine(cls) -> Resources:
        return cls(cpus=os.cpu_count() or 1, gpus=_gpu_count())


def _gpu_count() -> int:
    # The NVIDIA driver lists one folder per GPU; no CUDA library needs loading to count them.
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    def channel_dir(self, channel: str) -> Path:
        return self.root / "input" / "data" / channel

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def intermediate_dir(self) -> Path:
        return self.root / "output" / "intermediate"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    def create(self) -> None:
        for folder in (
            self.config_dir,
            self.code_dir,
            self.model_dir,
            self.output_data_dir,
            self.intermediate_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)

    def write_config(self, spec: JobSpec) -> None:
        """The three files a container finds in /opt/ml/input/config."""
        _write_json(self.config_dir / "hyperparameters.json", spec.hyperparameters)
        _write_json(self.config_dir / "inputdataconfig.json", input_data_config(spec))
        _write_json(self.config_dir / "resourceconfig.json", resource_config(spec))


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2))


def input_data_config(spec: JobSpec) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for channel in spec.channels:
        entry: dict[str, Any] = {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        }
        if channel.content_type:
            entry["ContentType"] = channel.content_type
        config[channel.name] = entry
    return config


def resource_config(spec: JobSpec) -> dict[str, Any]:
    return {
        "current_host": HOST,
        "current_instance_type": spec.instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": [HOST],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": spec.instance_type,
                "hosts": [HOST],
            }
        ],
        "network_interface_name": "eth0",
    }


def command_line_args(hyperparameters: dict[str, Any]) -> list[str]:
    """`--key value` pairs in key order, as the training toolkit builds them: one-letter keys get one dash,
    mappings become `k=v,k2=v2`, other values their `str()`."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def training_environment(
    spec: JobSpec, workspace: Workspace, resources: Resources, *, job_arn: str, region: str
) -> dict[str, str]:
    """The SM_* variables (and the job's own Environment) for the entry point."""
    hps = spec.user_hyperparameters
    program = spec.program or ""
    channels = sorted(c.name for c in spec.channels)
    values: dict[str, Any] = {
        "model_dir": str(workspace.model_dir),
        "channels": channels,
        "hps": hps,
        "num_gpus": resources.gpus,
        "num_cpus": resources.cpus,
        "num_neurons": 0,
        "output_data_dir": str(workspace.output_data_dir),
        "output_dir": str(workspace.output_dir),
        "output_intermediate_dir": str(workspace.intermediate_dir),
        "input_dir": str(workspace.input_dir),
        "input_config_dir": str(workspace.config_dir),
        "input_data_config": input_data_config(spec),
        "resource_config": resource_config(spec),
        "current_host": HOST,
        "current_instance_type": spec.instance_type,
        "hosts": [HOST],
        "network_interface_name": "eth0",
        "user_entry_point": program,
        "module_name": program.rsplit(".", 1)[0] if program.endswith(".py") else program,
        "module_dir": spec.submit_directory or str(workspace.code_dir),
        "framework_module": "",
        "log_level": _LOG_LEVEL_INFO,
        "is_master": True,
        "master_hostname": HOST,
        "user_args": command_line_args(hps),
    }
    environment = {f"SM_{key.upper()}": _env_value(value) for key, value in values.items()}
    environment["SM_TRAINING_ENV"] = json.dumps(
        {
            **values,
            "job_name": spec.name,
            "hyperparameters": hps,
            "channel_input_dirs": {c: str(workspace.channel_dir(c)) for c in channels},
        },
        sort_keys=True,
    )
    for channel in channels:
        environment[f"SM_CHANNEL_{channel.upper()}"] = str(workspace.channel_dir(channel))
    for key, value in hps.items():
        environment[f"SM_HP_{key.upper()}"] = _env_value(value)
    environment.update(
        SAGEMAKER_BASE_DIR=str(workspace.root),
        TRAINING_JOB_NAME=spec.name,
        TRAINING_JOB_ARN=job_arn,
        AWS_REGION=os.environ.get("AWS_REGION", region),
        AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", region),
        PYTHONUNBUFFERED="1",
    )
    environment.update(spec.environment)
    return environment


def entry_command(spec: JobSpec, workspace: Workspace) -> list[str]:
    """What to run, in the code folder: the container entry point, the built-in trainer, or the script."""
    args = command_line_args(spec.user_hyperparameters)
    if spec.container_entrypoint:
        return [*spec.container_entrypoint, *spec.container_arguments]
    if spec.builtin:
        return [sys.executable, "-m", "zeroserve.training_jobs.builtin", *args]
    program = spec.program or ""
    if program.endswith(".sh"):
        return ["/bin/sh", str(workspace.code_dir / program), *args]
    # The server's own interpreter: it has the `train` extra (torch, transformers) installed.
    return [sys.executable, str(workspace.code_dir / program), *args]


def child_environment(job_environment: dict[str, str], code_dir: Path) -> dict[str, str]:
    """The server's environment (its S3 endpoint and credentials included) without zeroserve's own
    settings, the job's on top, and the code folder first on PYTHONPATH as the toolkit puts it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEROSERVE_")}
    env.update(job_environment)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code_dir), os.environ.get("PYTHONPATH", "")]))
    return env
