"""Training jobs against a real server, real boto3, a real S3 (moto) and real job processes: script mode as
the SageMaker training toolkit runs it, every way a job can fail, and the job's processes after a crash."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from processes import alive
from s3server import put_object, s3_client, s3_server
from server import ServerProcess, wait_for_training_job

ROLE = "arn:aws:iam::000000000000:role/training"

# Reports what the toolkit contract gave it (argv, SM_* environment, channel contents) into output/data,
# and follows instructions passed as hyperparameters.
REPORTING_SCRIPT = r"""
import json, os, sys, time
args = sys.argv[1:]
hps = json.loads(os.environ["SM_HPS"])
report = {
    "argv": args,
    "env": {k: v for k, v in os.environ.items() if k.startswith(("SM_", "TRAINING_JOB"))},
    "channels": {
        c: sorted(os.listdir(os.environ["SM_CHANNEL_" + c.upper()]))
        for c in json.loads(os.environ["SM_CHANNELS"])
    },
    "cwd": os.getcwd(),
    "config": sorted(os.listdir(os.environ["SM_INPUT_CONFIG_DIR"])),
}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "report.json"), "w") as f:
    json.dump(report, f)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.bin"), "w") as f:
    f.write("weights")
if "pid_file" in hps:
    with open(hps["pid_file"], "w") as f:
        f.write(str(os.getpid()))
for epoch in range(int(hps.get("epochs", 1))):
    print(f"epoch={epoch} loss={1.0 / (epoch + 1):.4f}", flush=True)
if "failure" in hps:
    with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
        f.write(hps["failure"])
    sys.exit(1)
if "raise" in hps:
    raise RuntimeError(hps["raise"])
if "alloc_mb" in hps:
    blob = bytearray(int(hps["alloc_mb"]) * 1024 * 1024)
if "sleep_s" in hps:
    print("sleeping", flush=True)
    time.sleep(float(hps["sleep_s"]))
"""


def source_tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture(scope="module")
def trainer(s3_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"AWS_ENDPOINT_URL_S3": s3_url, "ZEROSERVE_TRAINING_MEMORY_MB": "1500",
           "ZEROSERVE_TRAINING_STOP_GRACE_S": "2", "ZEROSERVE_MAX_TRAINING_JOBS": "2"}  # fmt: skip
    with ServerProcess(tmp_path_factory.mktemp("trainer") / "data", env=env) as running:
        yield running


@pytest.fixture(scope="module")
def sm(trainer: ServerProcess) -> Any:
    return trainer.sagemaker()


@pytest.fixture(scope="module")
def source_url(s3_url: str) -> str:
    return put_object(s3_url, "code", "job/sourcedir.tar.gz", source_tarball({"train.py": REPORTING_SCRIPT}))


@pytest.fixture(scope="module")
def train_channel(s3_url: str) -> str:
    put_object(s3_url, "data", "imdb/train/part-0.csv", b"text,label\ngood,1\n")
    put_object(s3_url, "data", "imdb/train/nested/part-1.csv", b"text,label\nbad,0\n")
    return "s3://data/imdb/train"


def create_job(sm: Any, name: str, source_url: str, channels: dict[str, str], **hps: Any) -> dict[str, Any]:
    hyperparameters = {k: json.dumps(v) for k, v in hps.items()}
    hyperparameters.update(sagemaker_program='"train.py"', sagemaker_submit_directory=json.dumps(source_url))
    request = dict(
        TrainingJobName=name,
        RoleArn=ROLE,
        AlgorithmSpecification={
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training:1.13",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}],
        },
        HyperParameters=hyperparameters,
        InputDataConfig=[
            {"ChannelName": c, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
            for c, uri in channels.items()
        ],
        OutputDataConfig={"S3OutputPath": "s3://models/jobs"},
        ResourceConfig={"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 120},
    )
    sm.create_training_job(**request)
    return request


def read_tar_member(s3_url: str, url: str, member: str) -> bytes:
    bucket, _, key = url[len("s3://") :].partition("/")
    body = s3_client(s3_url).get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read()


@pytest.fixture(scope="module", autouse=True)
def output_bucket(s3_url: str) -> None:
    s3_client(s3_url).create_bucket(Bucket="models")


def test_script_mode_job_runs_as_the_training_toolkit_would(
    sm: Any, s3_url: str, source_url: str, train_channel: str
) -> None:
    create_job(sm, "script-mode", source_url, {"train": train_channel}, epochs=3, learning_rate=5e-5, a="x")
    job = wait_for_training_job(sm, "script-mode")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model_url = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_url == "s3://models/jobs/script-mode/output/model.tar.gz"
    assert read_tar_member(s3_url, model_url, "model.bin") == b"weights"
    report = json.loads(
        read_tar_member(s3_url, model_url.replace("model.tar.gz", "output.tar.gz"), "report.json")
    )
    # --key value in key order, one dash for one-letter keys; sagemaker_* stay the framework's.
    assert report["argv"] == ["-a", "x", "--epochs", "3", "--learning_rate", "5e-05"]
    env = report["env"]
    assert json.loads(env["SM_HPS"]) == {"a": "x", "epochs": 3, "learning_rate": 5e-05}
    assert env["SM_HP_EPOCHS"] == "3" and env["SM_USER_ENTRY_POINT"] == "train.py"
    assert json.loads(env["SM_CHANNELS"]) == ["train"]
    assert env["SM_CHANNEL_TRAIN"].endswith("/input/data/train")
    assert env["SM_MODEL_DIR"].endswith("/model") and env["SM_OUTPUT_DATA_DIR"].endswith("/output/data")
    assert env["SM_NUM_CPUS"] == str(os.cpu_count()) and env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_TRAINING_ENV"])["job_name"] == "script-mode"
    assert report["channels"] == {"train": ["nested", "part-0.csv"]}
    assert report["cwd"].endswith("/code")
    assert report["config"] == ["hyperparameters.json", "inputdataconfig.json", "resourceconfig.json"]
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"
    ]  # fmt: skip
    assert [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]] == [
        ("loss", pytest.approx(1 / 3, abs=1e-3))
    ]
    assert job["BillableTimeInSeconds"] >= 1
    assert job["TrainingStartTime"] <= job["TrainingEndTime"]
    assert job["HyperParameters"]["epochs"] == "3"


def test_duplicate_job_name_is_resource_in_use(sm: Any, source_url: str, train_channel: str) -> None:
    create_job(sm, "twice", source_url, {"train": train_channel})
    with pytest.raises(ClientError) as caught:
        create_job(sm, "twice", source_url, {"train": train_channel})
    assert caught.value.response["Error"]["Code"] == "ResourceInUse"
    assert wait_for_training_job(sm, "twice")["TrainingJobStatus"] == "Completed"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda r: r.pop("RoleArn"), "roleArn"),
        (lambda r: r.update(TrainingJobName="bad_name"), "trainingJobName"),
        (lambda r: r["StoppingCondition"].update(MaxRuntimeInSeconds=0), "maxRuntimeInSeconds"),
        (
            lambda r: r["AlgorithmSpecification"]["MetricDefinitions"].append({"Name": "x", "Regex": "(("}),
            "Regex",
        ),
        (lambda r: r["OutputDataConfig"].update(S3OutputPath="/tmp/out"), "S3OutputPath"),
        (lambda r: r["HyperParameters"].pop("sagemaker_program"), "entry point"),
    ],
)
def test_invalid_request_is_a_validation_exception_and_creates_nothing(
    trainer: ServerProcess, sm: Any, source_url: str, change: Any, needle: str
) -> None:
    request = {
        "TrainingJobName": "invalid",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {
            "TrainingImage": "img",
            "TrainingInputMode": "File",
            "MetricDefinitions": [],
        },
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(source_url),
        },
        "OutputDataConfig": {"S3OutputPath": "s3://models/jobs"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    change(request)
    with pytest.raises(ClientError) as caught:
        unchecked(trainer).create_training_job(**request)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert needle in caught.value.response["Error"]["Message"]
    assert "invalid" not in [
        j["TrainingJobName"] for j in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    ]


def test_local_paths_outside_the_allowed_folders_are_refused(sm: Any, source_url: str) -> None:
    with pytest.raises(ClientError) as caught:
        create_job(sm, "reads-etc", source_url, {"train": "file:///etc"})
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException" and "ZEROSERVE_ALLOWED_PATHS" in error["Message"]
    with pytest.raises(ClientError):
        sm.describe_training_job(TrainingJobName="reads-etc")


def unchecked(server: ServerProcess) -> Any:
    """A client that sends what it is given: the server's own validation is under test, not boto3's."""
    import boto3
    from botocore.config import Config

    from server import CREDENTIALS

    config = Config(parameter_validation=False)
    return boto3.client("sagemaker", endpoint_url=server.url, config=config, **CREDENTIALS)


def failed_reason(sm: Any, name: str) -> str:
    job = wait_for_training_job(sm, name)
    assert job["TrainingJobStatus"] == "Failed", job
    assert job["SecondaryStatus"] == "Failed"
    return str(job["FailureReason"])


def test_channel_prefix_without_objects_fails_the_job_with_the_prefix_named(sm: Any, source_url: str) -> None:
    create_job(sm, "empty-channel", source_url, {"train": "s3://data/nothing/here"})
    reason = failed_reason(sm, "empty-channel")
    assert reason.startswith("ClientError: No S3 objects found") and "s3://data/nothing/here" in reason


def test_missing_bucket_fails_the_job_naming_the_bucket(sm: Any, source_url: str) -> None:
    create_job(sm, "no-bucket", source_url, {"train": "s3://no-such-bucket/train"})
    assert 'bucket "no-such-bucket"' in failed_reason(sm, "no-bucket")


def test_source_without_the_entry_point_fails_the_job(sm: Any, s3_url: str, train_channel: str) -> None:
    url = put_object(s3_url, "code", "other/sourcedir.tar.gz", source_tarball({"main.py": "print(1)"}))
    create_job(sm, "no-entry", url, {"train": train_channel})
    assert "entry point 'train.py' is not in the source directory" in failed_reason(sm, "no-entry")


def test_source_tarball_escaping_its_folder_is_refused(sm: Any, s3_url: str, train_channel: str) -> None:
    url = put_object(s3_url, "code", "evil/sourcedir.tar.gz", source_tarball({"../train.py": "print(1)"}))
    create_job(sm, "evil-source", url, {"train": train_channel})
    assert "refused" in failed_reason(sm, "evil-source")


def test_unsatisfiable_requirements_fail_the_job_naming_them(
    sm: Any, s3_url: str, train_channel: str
) -> None:
    files = {"train.py": "print(1)", "requirements.txt": "surely-not-installed-package==1.0\n"}
    url = put_object(s3_url, "code", "reqs/sourcedir.tar.gz", source_tarball(files))
    create_job(sm, "requirements", url, {"train": train_channel})
    assert "surely-not-installed-package==1.0" in failed_reason(sm, "requirements")


def test_script_error_is_the_failure_reason(sm: Any, source_url: str, train_channel: str) -> None:
    create_job(sm, "raises", source_url, {"train": train_channel}, **{"raise": "labels column missing"})
    reason = failed_reason(sm, "raises")
    assert "ExitCode 1" in reason and "RuntimeError: labels column missing" in reason


def test_output_failure_file_is_the_failure_reason(sm: Any, source_url: str, train_channel: str) -> None:
    create_job(sm, "writes-failure", source_url, {"train": train_channel}, failure="dataset had 0 rows")
    assert failed_reason(sm, "writes-failure") == "AlgorithmError: dataset had 0 rows"


def test_script_over_its_memory_limit_fails_with_the_memory_error(
    sm: Any, source_url: str, train_channel: str
) -> None:
    create_job(sm, "too-big", source_url, {"train": train_channel}, alloc_mb=3000)
    assert "MemoryError" in failed_reason(sm, "too-big")


def test_job_past_max_runtime_is_stopped_as_max_runtime_exceeded(
    sm: Any, source_url: str, train_channel: str
) -> None:
    hyperparameters = {"sleep_s": "60", "sagemaker_program": '"train.py"',
                       "sagemaker_submit_directory": json.dumps(source_url)}  # fmt: skip
    sm.create_training_job(
        TrainingJobName="too-long",
        RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        HyperParameters=hyperparameters,
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": train_channel}},
            }
        ],
        OutputDataConfig={"S3OutputPath": "s3://models/jobs"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 1},
    )
    job = wait_for_training_job(sm, "too-long", timeout_s=30)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    # What the script saved before it was stopped is kept, as SageMaker does.
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("/too-long/output/model.tar.gz")


def wait_for_file(path: Path, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written in {timeout_s} s")


def test_stopped_job_ends_stopped_and_its_process_is_gone(
    sm: Any, source_url: str, train_channel: str, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    create_job(sm, "stop-me", source_url, {"train": train_channel}, sleep_s=60, pid_file=str(pid_file))
    pid = int(wait_for_file(pid_file))
    sm.stop_training_job(TrainingJobName="stop-me")
    assert sm.describe_training_job(TrainingJobName="stop-me")["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = wait_for_training_job(sm, "stop-me", timeout_s=30)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert not alive(pid)
    with pytest.raises(ClientError) as caught:
        sm.stop_training_job(TrainingJobName="stop-me")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "status Stopped" in caught.value.response["Error"]["Message"]


def test_unknown_job_is_a_validation_exception(sm: Any) -> None:
    for call in (sm.describe_training_job, sm.stop_training_job):
        with pytest.raises(ClientError) as caught:
            call(TrainingJobName="never-created")
        assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_jobs_beyond_the_limit_wait_in_starting(
    sm: Any, source_url: str, train_channel: str, tmp_path: Path
) -> None:
    pids = [tmp_path / f"pid-{i}" for i in range(3)]
    for i, pid_file in enumerate(pids):
        create_job(
            sm, f"queued-{i}", source_url, {"train": train_channel}, sleep_s=60, pid_file=str(pid_file)
        )
    wait_for_file(pids[0])
    wait_for_file(pids[1])
    third = sm.describe_training_job(TrainingJobName="queued-2")
    assert (third["TrainingJobStatus"], third["SecondaryStatus"]) == ("InProgress", "Starting")
    sm.stop_training_job(TrainingJobName="queued-2")  # nothing runs yet, so it is stopped at once
    assert sm.describe_training_job(TrainingJobName="queued-2")["TrainingJobStatus"] == "Stopped"
    for i in range(2):
        sm.stop_training_job(TrainingJobName=f"queued-{i}")
    for i in range(2):
        assert wait_for_training_job(sm, f"queued-{i}", timeout_s=30)["TrainingJobStatus"] == "Stopped"
    assert not pids[2].exists()  # it never started


def test_list_training_jobs_filters_sorts_and_paginates(sm: Any, source_url: str, train_channel: str) -> None:
    for i in range(3):
        create_job(sm, f"listed-{i}", source_url, {"train": train_channel})
    for i in range(3):
        wait_for_training_job(sm, f"listed-{i}")
    found = sm.list_training_jobs(NameContains="listed-", SortBy="Name", SortOrder="Ascending")
    assert [j["TrainingJobName"] for j in found["TrainingJobSummaries"]] == [
        "listed-0",
        "listed-1",
        "listed-2",
    ]
    pages = sm.get_paginator("list_training_jobs").paginate(
        NameContains="listed", PaginationConfig={"PageSize": 2}
    )
    assert sorted(j["TrainingJobName"] for p in pages for j in p["TrainingJobSummaries"]) == [
        "listed-0", "listed-1", "listed-2"
    ]  # fmt: skip
    failed = sm.list_training_jobs(StatusEquals="Failed", MaxResults=100)["TrainingJobSummaries"]
    assert "listed-0" not in [j["TrainingJobName"] for j in failed]
    assert {j["TrainingJobStatus"] for j in failed} <= {"Failed"}
    later = sm.list_training_jobs(CreationTimeAfter=time.time() + 60)["TrainingJobSummaries"]
    assert later == []


NO_MODEL_ARTIFACTS = "Value null at 'modelArtifacts' failed to satisfy constraint: Member must not be null"


@pytest.mark.parametrize("action", ["DescribeTrainingJob", "ListTrainingJobs"])
def test_answers_fit_botocore_output_shapes(
    trainer: ServerProcess, sm: Any, source_url: str, train_channel: str, action: str
) -> None:
    import httpx

    from zeroserve.aws.service_model import service_model
    from zeroserve.aws.validation import problems_in

    for name, hps in (("shaped-ok", {}), ("shaped-failed", {"raise": "boom"})):
        if name not in [
            j["TrainingJobName"] for j in sm.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
        ]:
            create_job(sm, name, source_url, {"train": train_channel}, **hps)
        wait_for_training_job(sm, name)
        body = {"TrainingJobName": name} if action == "DescribeTrainingJob" else {"MaxResults": 100}
        answer = httpx.post(
            trainer.url,
            json=body,
            headers={"X-Amz-Target": f"SageMaker.{action}", "Content-Type": "application/x-amz-json-1.1"},
        )
        assert answer.status_code == 200
        problems = problems_in(service_model().operation_model(action).output_shape, answer.json())
        # botocore marks ModelArtifacts required, but a job that saved no model has none (SageMaker too).
        allowed = [] if name == "shaped-ok" else [NO_MODEL_ARTIFACTS]
        assert [p for p in problems if p not in allowed] == []
