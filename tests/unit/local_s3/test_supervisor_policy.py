"""Restart backoff and the weed command line, without starting anything."""

from __future__ import annotations

import tomllib
from pathlib import Path

from zeroserve.local_s3.supervisor import LONGEST_DELAY_S, restart_delay_s
from zeroserve.local_s3.weed import plan_launch, store_environment


def test_first_failure_restarts_at_once_then_delays_double_up_to_a_cap() -> None:
    delays = [restart_delay_s(n) for n in range(0, 10)]
    assert delays[:5] == [0.0, 0.0, 0.5, 1.0, 2.0]
    assert delays[-1] == LONGEST_DELAY_S
    assert restart_delay_s(10_000) == LONGEST_DELAY_S  # no overflow after a long outage


def test_every_service_binds_loopback_on_a_chosen_port(tmp_path: Path) -> None:
    launch = plan_launch("weed", tmp_path / "s3", 45678, {"PATH": "/bin"})
    flags = dict(arg.lstrip("-").split("=", 1) for arg in launch.argv[3:])
    assert launch.argv[1:3] == ["-logtostderr", "mini"]
    assert flags["ip"] == flags["ip.bind"] == "127.0.0.1"
    assert flags["s3.port"] == "45678"
    assert launch.endpoint_url == "http://127.0.0.1:45678"
    for service in ("master", "volume", "filer", "admin"):
        assert int(flags[f"{service}.port"]) > 0 and int(flags[f"{service}.port.grpc"]) > 0
    assert flags["webdav"] == "false" and flags["admin.ui"] == "false" and flags["s3.iam"] == "false"
    filer = tomllib.loads((tmp_path / "s3" / "filer.toml").read_text())
    assert filer["leveldb"] == {"enabled": True, "dir": str(tmp_path / "s3" / "filerldb")}


def test_the_filer_config_survives_an_odd_data_dir_name(tmp_path: Path) -> None:
    folder = tmp_path / 'a "quoted" \\ dir'
    plan_launch("weed", folder, 45678, {})
    assert tomllib.loads((folder / "filer.toml").read_text())["leveldb"]["dir"] == str(folder / "filerldb")


def test_the_store_gets_no_aws_credentials_and_a_go_memory_limit() -> None:
    server_env = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "S3_BUCKET": "x", "HOME": "/h"}
    assert store_environment(server_env, memory_limit_mb=64) == {"HOME": "/h", "GOMEMLIMIT": "64MiB"}
    assert store_environment(dict(server_env, GOMEMLIMIT="1GiB")) == {"HOME": "/h"}
