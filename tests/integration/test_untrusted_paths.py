"""CreateModel refuses a local ModelDataUrl or HF_MODEL_ID outside ZEROSERVE_ALLOWED_PATHS, over the API."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from server import ServerProcess, deploy


@pytest.fixture(scope="module")
def allowed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("allowed")


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, allowed_dir: Path) -> Iterator[ServerProcess]:
    env = {"ZEROSERVE_ALLOWED_PATHS": str(allowed_dir)}
    with ServerProcess(tmp_path_factory.mktemp("strict") / "data", env=env) as running:
        yield running


@pytest.mark.parametrize(
    ("container", "named"),
    [
        ({"ModelDataUrl": "file:///etc"}, "ModelDataUrl file:///etc"),
        ({"ModelDataUrl": "/root"}, "ModelDataUrl /root"),
        ({"Environment": {"HF_MODEL_ID": "/proc/self"}}, "HF_MODEL_ID /proc/self"),
    ],
)
def test_a_local_path_outside_the_allowed_roots_is_a_validation_exception(
    strict: ServerProcess, container: dict[str, object], named: str
) -> None:
    sm = strict.sagemaker()
    with pytest.raises(ClientError) as caught:
        sm.create_model(ModelName="outside", PrimaryContainer=container)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(f"{named}: is outside the folders this server may read")
    assert sm.list_models()["Models"] == []


def test_an_artifact_inside_the_allowed_roots_deploys(
    strict: ServerProcess, allowed_dir: Path, tiny_tarball: Path
) -> None:
    inside = shutil.copy(tiny_tarball, allowed_dir / "model.tar.gz")
    assert deploy(strict.sagemaker(), "inside", str(inside))["EndpointStatus"] == "InService"
