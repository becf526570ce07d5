"""sagemaker-core, the resource layer the SageMaker Python SDK v3 is built on, against zeroserve: a training
job and a serverless endpoint created, described, waited on and invoked through its resource classes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3server import s3_client, s3_server
from server import ServerProcess

ROLE = "arn:aws:iam::000000000000:role/zeroserve"
# Script mode: "train" by copying the checkpoint named by a hyperparameter into SM_MODEL_DIR.
COPYING_SCRIPT = """
import argparse, os, shutil
parser = argparse.ArgumentParser()
parser.add_argument("--checkpoint")
args, _ = parser.parse_known_args()
shutil.copytree(args.checkpoint, os.environ["SM_MODEL_DIR"], dirs_exist_ok=True)
print("loss=0.25")
"""


@pytest.fixture(scope="module")
def zeroserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with s3_server() as s3_url:
        s3_client(s3_url).create_bucket(Bucket="core-models")
        env = {"AWS_ENDPOINT_URL_S3": s3_url}
        with ServerProcess(tmp_path_factory.mktemp("core") / "data", env=env) as running:
            yield running


def test_sagemaker_core_trains_deploys_and_invokes(
    zeroserve: ServerProcess, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for service in ("SAGEMAKER", "SAGEMAKER_RUNTIME", "CLOUDWATCH_LOGS"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", zeroserve.url)
    from sagemaker_core.main import shapes
    from sagemaker_core.main.resources import Endpoint, EndpointConfig, Model, TrainingJob

    code, data = tmp_path / "code", tmp_path / "data"
    code.mkdir()
    (code / "train.py").write_text(COPYING_SCRIPT)
    shutil.copytree(tiny_model_dir, data)
    job = TrainingJob.create(
        training_job_name="core-job",
        role_arn=ROLE,
        algorithm_specification=shapes.AlgorithmSpecification(
            training_image="huggingface-pytorch-training",
            training_input_mode="File",
            metric_definitions=[shapes.MetricDefinition(name="loss", regex=r"loss=([0-9.]+)")],
        ),
        hyper_parameters={
            "checkpoint": json.dumps(str(data)),
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(code.as_uri()),
        },
        input_data_config=[
            shapes.Channel(
                channel_name="train",
                data_source=shapes.DataSource(
                    s3_data_source=shapes.S3DataSource(s3_data_type="S3Prefix", s3_uri=data.as_uri())
                ),
            )
        ],
        output_data_config=shapes.OutputDataConfig(s3_output_path="s3://core-models/jobs"),
        resource_config=shapes.ResourceConfig(
            instance_type="ml.m5.large", instance_count=1, volume_size_in_gb=30
        ),
        stopping_condition=shapes.StoppingCondition(max_runtime_in_seconds=300),
    )
    job.wait(poll=1, timeout=120)
    job.refresh()
    assert job.training_job_status == "Completed"
    assert job.final_metric_data_list[0].value == pytest.approx(0.25)
    model_data = job.model_artifacts.s3_model_artifacts
    assert model_data == "s3://core-models/jobs/core-job/output/model.tar.gz"

    model = Model.create(
        model_name="core-model",
        execution_role_arn=ROLE,
        primary_container=shapes.ContainerDefinition(
            image="huggingface-pytorch-inference", model_data_url=model_data,
            environment={"HF_TASK": "text-classification"},
        ),
    )  # fmt: skip
    # sagemaker-core 1.0.78 serializes memory_size_in_mb as "MemorySizeInMb", which botocore rejects, so
    # the serverless config is created with boto3 and read back through the resource class.
    zeroserve.sagemaker().create_endpoint_config(
        EndpointConfigName="core-config",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "core-model",
                             "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}],
    )  # fmt: skip
    config = EndpointConfig.get("core-config")
    assert config.production_variants[0].serverless_config.max_concurrency == 2
    endpoint = Endpoint.create(endpoint_name="core-endpoint", endpoint_config_name="core-config")
    endpoint.wait_for_status("InService", poll=1, timeout=300)
    answer = endpoint.invoke(
        body=json.dumps({"inputs": "I love this movie"}), content_type="application/json"
    )
    predictions = json.loads(answer.body.read())
    assert predictions[0]["label"] in ("NEGATIVE", "POSITIVE")
    endpoint.delete()
    config.delete()
    model.delete()
    assert "core-endpoint" not in [e.endpoint_name for e in Endpoint.get_all()]
