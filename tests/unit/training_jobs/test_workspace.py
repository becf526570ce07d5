"""The script-mode contract as pure functions: arguments, SM_* variables, the config files, the command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zeroserve.training_jobs.spec import JobSpec, parse
from zeroserve.training_jobs.workspace import (
    Resources,
    Workspace,
    command_line_args,
    entry_command,
    training_environment,
)

REQUEST = {
    "TrainingJobName": "job",
    "RoleArn": "arn:aws:iam::000000000000:role/r",
    "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
    "HyperParameters": {
        "epochs": "2",
        "model_name": '"/models/minilm"',
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://b/job/source/sourcedir.tar.gz"',
        "plain": "not json",
    },
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t"}},
        },
        {
            "ChannelName": "test",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/v"}},
        },
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
    "ResourceConfig": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "Environment": {"MY_FLAG": "1"},
}


def spec() -> JobSpec:
    return parse(REQUEST)


def test_hyperparameters_are_json_decoded_and_framework_ones_kept_from_the_script() -> None:
    assert spec().user_hyperparameters == {"epochs": 2, "model_name": "/models/minilm", "plain": "not json"}
    assert spec().program == "train.py"


def test_command_line_args_follow_the_training_toolkit() -> None:
    args = command_line_args({"lr": 0.1, "b": True, "epochs": 2, "m": {"y": 2, "x": 1}, "none": None})
    assert args == ["-b", "True", "--epochs", "2", "--lr", "0.1", "-m", "x=1,y=2", "--none", ""]


def test_environment_carries_channels_hyperparameters_and_resources(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    env = training_environment(
        spec(), workspace, Resources(cpus=2, gpus=0), job_arn="arn:job", region="eu-west-1"
    )
    assert json.loads(env["SM_CHANNELS"]) == ["test", "train"]
    assert env["SM_CHANNEL_TRAIN"] == str(tmp_path / "input" / "data" / "train")
    assert env["SM_HP_EPOCHS"] == "2" and env["SM_HP_MODEL_NAME"] == "/models/minilm"
    assert json.loads(env["SM_HPS"]) == {"epochs": 2, "model_name": "/models/minilm", "plain": "not json"}
    assert (env["SM_NUM_CPUS"], env["SM_NUM_GPUS"]) == ("2", "0")
    assert env["SM_MODEL_DIR"] == str(tmp_path / "model")
    assert env["SM_MODULE_DIR"] == "s3://b/job/source/sourcedir.tar.gz"
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.p3.2xlarge"
    assert json.loads(env["SM_USER_ARGS"]) == [
        "--epochs",
        "2",
        "--model_name",
        "/models/minilm",
        "--plain",
        "not json",
    ]
    assert env["MY_FLAG"] == "1" and env["TRAINING_JOB_ARN"] == "arn:job"
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["channel_input_dirs"]["test"] == str(tmp_path / "input" / "data" / "test")


def test_config_files_are_written_as_a_container_finds_them(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    workspace.create()
    workspace.write_config(spec())
    config = tmp_path / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text())["epochs"] == "2"
    assert set(json.loads((config / "inputdataconfig.json").read_text())) == {"train", "test"}
    assert json.loads((config / "resourceconfig.json").read_text())["current_host"] == "algo-1"


def test_entry_command_runs_the_script_with_the_servers_python(tmp_path: Path) -> None:
    command = entry_command(spec(), Workspace(tmp_path))
    assert command[:2] == [sys.executable, str(tmp_path / "code" / "train.py")]
    assert command[2:4] == ["--epochs", "2"]


def test_builtin_trainer_image_runs_zeroserve_train() -> None:
    algorithm = {"TrainingImage": "zeroserve/sentiment-trainer:latest"}
    builtin = parse(
        {**REQUEST, "AlgorithmSpecification": algorithm, "HyperParameters": {"max_examples": "64"}}
    )
    assert entry_command(builtin, Workspace(Path("/j")))[1:] == [
        "-m",
        "zeroserve.training_jobs.builtin",
        "--max_examples",
        "64",
    ]
