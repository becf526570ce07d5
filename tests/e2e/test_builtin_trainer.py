"""The built-in trainer (`zeroserve/sentiment-trainer`): `zeroserve train` as a training job whose model
deploys and answers, so the default model can be produced through the API too."""

from __future__ import annotations

import tarfile
from pathlib import Path

from server import ServerProcess, deploy, invoke_json, wait_for_training_job

ROLE = "arn:aws:iam::000000000000:role/zeroserve"


def test_builtin_trainer_job_trains_a_model_that_serves(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        sm = server.sagemaker()
        sm.create_training_job(
            TrainingJobName="builtin",
            RoleArn=ROLE,
            AlgorithmSpecification={
                "TrainingImage": "zeroserve/sentiment-trainer",
                "TrainingInputMode": "File",
            },
            HyperParameters={
                "max_examples": "48",
                "max_length": "32",
                "batch_size": "16",
                "eval_imdb_limit": "32",
                "eval_rt_limit": "0",
            },
            OutputDataConfig={"S3OutputPath": (tmp_path / "out").as_uri()},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 600},
        )
        job = wait_for_training_job(sm, "builtin", timeout_s=600)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
        assert 0.0 <= metrics["validation:accuracy"] <= 1.0 and "train:loss" in metrics
        model_url = job["ModelArtifacts"]["S3ModelArtifacts"]
        with tarfile.open(model_url.removeprefix("file://")) as archive:
            assert {"config.json", "tokenizer.json"} <= set(archive.getnames())
        with tarfile.open(
            model_url.replace("model.tar.gz", "output.tar.gz").removeprefix("file://")
        ) as archive:
            assert "metrics.json" in archive.getnames()
        described = deploy(sm, "builtin", model_url)
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")
        answer = invoke_json(server.runtime(), "builtin", {"inputs": "I love this movie"})
        assert answer[0]["label"] in ("LABEL_0", "LABEL_1")
