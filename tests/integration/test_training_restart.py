"""A server killed -9 while a training job runs: after a restart on the same data dir the job is Failed with
a reason, never InProgress forever, and nothing of its process tree is left."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from test_training_jobs import ROLE, wait_for_file

from processes import alive
from server import ServerProcess, wait_for_training_job

# A job that starts a child of its own (as a DataLoader worker would) and records both pids.
FORKING_SCRIPT = r"""
import json, os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
hps = json.loads(os.environ["SM_HPS"])
with open(hps["pid_file"], "w") as f:
    f.write(json.dumps([os.getpid(), child.pid]))
time.sleep(120)
"""


def start_job(sm: Any, name: str, code_dir: Path, data_dir: Path, pid_file: Path) -> None:
    sm.create_training_job(
        TrainingJobName=name,
        RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        HyperParameters={
            "pid_file": json.dumps(str(pid_file)),
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(code_dir.as_uri()),
        },
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data_dir.as_uri()}},
            }
        ],
        OutputDataConfig={"S3OutputPath": (data_dir.parent / "out").as_uri()},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )


def job_folders(tmp_path: Path) -> tuple[Path, Path]:
    """A code folder holding the forking script and a one-file data folder."""
    code, data = tmp_path / "code", tmp_path / "data"
    code.mkdir()
    data.mkdir()
    (code / "train.py").write_text(FORKING_SCRIPT)
    (data / "rows.csv").write_text("text,label\n")
    return code, data


def test_job_of_a_killed_server_is_failed_after_restart_and_its_processes_are_gone(tmp_path: Path) -> None:
    code, data = job_folders(tmp_path)
    server = ServerProcess(tmp_path / "server", env={"ZEROSERVE_MAX_TRAINING_JOBS": "1"}).start()
    try:
        sm = server.sagemaker()
        start_job(sm, "running", code, data, tmp_path / "running.pid")
        start_job(sm, "queued", code, data, tmp_path / "queued.pid")
        pids = json.loads(wait_for_file(tmp_path / "running.pid"))
        assert sm.describe_training_job(TrainingJobName="queued")["SecondaryStatus"] == "Starting"
        os.kill(server.pid, signal.SIGKILL)
        server.process.wait()  # type: ignore[union-attr]
    finally:
        server.stop()
    restarted = ServerProcess(tmp_path / "server", env={"ZEROSERVE_MAX_TRAINING_JOBS": "1"}).start()
    try:
        sm = restarted.sagemaker()
        job = sm.describe_training_job(TrainingJobName="running")
        assert job["TrainingJobStatus"] == "Failed"
        assert "server stopped while this job ran" in job["FailureReason"]
        assert not any(alive(pid) for pid in pids)
        # The queued job never ran, so it starts now instead of failing.
        new_pids = json.loads(wait_for_file(tmp_path / "queued.pid"))
        assert sm.describe_training_job(TrainingJobName="queued")["TrainingJobStatus"] == "InProgress"
        sm.stop_training_job(TrainingJobName="queued")
        assert wait_for_training_job(sm, "queued", timeout_s=30)["TrainingJobStatus"] == "Stopped"
        assert not any(alive(pid) for pid in new_pids)
    finally:
        restarted.stop()


def test_server_shutdown_fails_running_jobs_and_ends_their_processes(tmp_path: Path) -> None:
    code, data = job_folders(tmp_path)
    with ServerProcess(tmp_path / "server") as server:
        start_job(server.sagemaker(), "interrupted", code, data, tmp_path / "pid")
        pids = json.loads(wait_for_file(tmp_path / "pid"))
    assert not any(alive(pid) for pid in pids)
    with ServerProcess(tmp_path / "server") as server:
        job = server.sagemaker().describe_training_job(TrainingJobName="interrupted")
        assert job["TrainingJobStatus"] == "Failed"
        assert "shut down" in job["FailureReason"]
