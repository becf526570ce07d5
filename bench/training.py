"""Section 12: training jobs. CreateTrainingJob -> the script's first line, how soon a printed line can be
read through the CloudWatch Logs API, and a warm endpoint's latency while a training job runs beside it."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import load
from bench.context import Context, log
from bench.report import Section, Table
from bench.stats import Summary, fmt
from bench.workload import TokenTexts, body
from bench.zsserver import Zeroserve, running

NAME = "training"
TITLE = "12. Training jobs beside serving"
ROLE = "arn:aws:iam::000000000000:role/bench"
ENDPOINT = "beside-training"
# Records when it started, then prints timestamped lines for the log-delivery measurement.
PROBE_SCRIPT = """
import json, os, sys, time
started = time.time()
hps = json.loads(os.environ["SM_HPS"])
open(hps["started_file"], "w").write(repr(started))
for i in range(int(hps.get("ticks", 0))):
    print(f"tick {time.time()!r}", flush=True)
    time.sleep(0.25)
"""


def _create(zs: Zeroserve, name: str, code: Path, data: Path, hps: dict[str, Any], program: str) -> None:
    hyperparameters = {k: json.dumps(v) for k, v in hps.items()}
    hyperparameters.update(
        sagemaker_program=json.dumps(program), sagemaker_submit_directory=json.dumps(code.as_uri())
    )
    zs.sm.create_training_job(
        TrainingJobName=name,
        RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": "bench", "TrainingInputMode": "File"},
        HyperParameters=hyperparameters,
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data.as_uri()}},
            }
        ],
        OutputDataConfig={"S3OutputPath": (data.parent / "out").as_uri()},
        StoppingCondition={"MaxRuntimeInSeconds": 900},
    )


def _wait_done(zs: Zeroserve, name: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while zs.sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in (
        "InProgress",
        "Stopping",
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"training job {name} still running after {timeout_s} s")
        time.sleep(0.05)


def _start_latencies_ms(zs: Zeroserve, root: Path, count: int) -> list[float]:
    out = []
    for i in range(count):
        started_file = root / f"started-{i}"
        before = time.time()
        _create(
            zs, f"start-{i}", root / "code", root / "data", {"started_file": str(started_file)}, "probe.py"
        )
        _wait_done(zs, f"start-{i}")
        out.append((float(started_file.read_text()) - before) * 1000)
    return out


def _log_delays_ms(zs: Zeroserve, root: Path, ticks: int) -> list[float]:
    import boto3

    logs = boto3.client(
        "logs", endpoint_url=zs.url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    _create(
        zs,
        "log-delay",
        root / "code",
        root / "data",
        {"started_file": str(root / "log-started"), "ticks": ticks},
        "probe.py",
    )
    seen: dict[str, float] = {}
    deadline = time.monotonic() + ticks * 0.25 + 30
    stream = None
    while len(seen) < ticks and time.monotonic() < deadline:
        if stream is None:
            try:
                streams = logs.describe_log_streams(
                    logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="log-delay/"
                ).get("logStreams", [])
            except logs.exceptions.ResourceNotFoundException:  # the job has printed nothing yet
                streams = []
            stream = streams[0]["logStreamName"] if streams else None
        if stream is not None:
            events = logs.get_log_events(
                logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream, startFromHead=True
            )["events"]
            now = time.time()
            for event in events:
                seen.setdefault(event["message"], now)
        time.sleep(0.01)
    _wait_done(zs, "log-delay")
    return [
        (arrived - float(message.split()[1])) * 1000
        for message, arrived in seen.items()
        if message.startswith("tick")
    ]


def _latencies_beside(zs: Zeroserve, url: str, payload: bytes, count: int, job: str | None) -> list[float]:
    if job is not None:
        deadline = time.monotonic() + 60
        while zs.sm.describe_training_job(TrainingJobName=job)["SecondaryStatus"] != "Training":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{job} did not start training")
            time.sleep(0.1)
        time.sleep(3)  # past the script's imports: measure beside the training loop itself
    return load.sequential(zs.http, url, payload, count, max_s=120)


def run(ctx: Context) -> Section:
    from zeroserve.sentiment_trainer.base_model import minilm_path
    from zeroserve.sentiment_trainer.data import train_sample

    section = Section(NAME, TITLE)
    repo = Path(__file__).resolve().parent.parent
    scratch = tempfile.TemporaryDirectory()
    root = Path(scratch.name)
    # A fresh data dir: job names are unique per server, and earlier runs' jobs would be in the way.
    with scratch, running(data_dir=root / "server", log_name=NAME) as zs:
        (root / "code").mkdir()
        (root / "code" / "probe.py").write_text(PROBE_SCRIPT)
        (root / "code" / "train.py").write_text(
            (repo / "examples/sagemaker_sdk/scripts/train.py").read_text()
        )
        (root / "data").mkdir()
        with (root / "data" / "train.csv").open("w") as f:
            import csv

            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows((r.text, r.label) for r in train_sample(4000, seed=0))
        log("training: CreateTrainingJob -> script start")
        starts = Summary.of(_start_latencies_ms(zs, root, ctx.pick(10, 3)))
        log("training: log delivery delay")
        delays = Summary.of(_log_delays_ms(zs, root, ctx.pick(40, 8)))

        zs.redeploy(ENDPOINT, ctx.sentiment, max_concurrency=4)
        weights = zs.variant(ENDPOINT).get("model", {}).get("weights", "?")  # the fidelity gate's choice
        url = zs.invocations_url(ENDPOINT)
        payload = body(TokenTexts(ctx.sentiment.checkpoint / "tokenizer.json").text(16))
        count = ctx.pick(400, 40)
        load.sequential(zs.http, url, payload, 20)
        log("training: warm latency idle, then beside a training job, then idle again")
        idle = _latencies_beside(zs, url, payload, count, None)
        hps = {"model_name": str(minilm_path()), "epochs": 5, "max_train_examples": 4000}
        _create(zs, "beside", root / "code", root / "data", hps, "train.py")
        busy = _latencies_beside(zs, url, payload, count, "beside")
        zs.sm.stop_training_job(TrainingJobName="beside")
        _wait_done(zs, "beside")
        idle += _latencies_beside(zs, url, payload, count, None)
    idle_s, busy_s = Summary.of(idle), Summary.of(busy)
    section.intro = (
        "A trivial script-mode job (standard library only) with a one-file `file://` channel measures "
        "CreateTrainingJob -> the script's first statement; the same script printing a timestamped line "
        "every 250 ms, read back with boto3 `get_log_events` polled every 10 ms, measures log delivery. "
        f"Then a warm MiniLM sentiment endpoint ({weights} ONNX, as the fidelity gate chose) answers "
        "sequential 16-token requests idle, beside a real training "
        "job (examples/sagemaker_sdk/scripts/train.py fine-tuning MiniLM on 4,000 reviews, niced, all "
        "cores), and idle again. On 2 cores the job and the endpoint share the same cores."
    )
    section.tables.append(
        Table(
            ["figure", "n", "p50 ms", "p99 ms"],
            [
                [
                    "CreateTrainingJob -> script start (target <= 2,000 ms + download)",
                    str(starts.n),
                    fmt(starts.p50, 0),
                    fmt(starts.p99, 0),
                ],
                [
                    "printed line -> readable through GetLogEvents (target <= 1,000 ms)",
                    str(delays.n),
                    fmt(delays.p50, 0),
                    fmt(delays.p99, 0),
                ],
                ["warm endpoint, idle", str(idle_s.n), fmt(idle_s.p50, 2), fmt(idle_s.p99, 2)],
                [
                    "warm endpoint, beside a training job",
                    str(busy_s.n),
                    fmt(busy_s.p50, 2),
                    fmt(busy_s.p99, 2),
                ],
            ],
            "Training jobs (one run; client: Python httpx, sequential, one keep-alive connection)",
        )
    )
    section.headline = {
        "CreateTrainingJob -> script start p50": f"{fmt(starts.p50, 0)} ms",
        "training log line -> GetLogEvents p50 / p99": f"{fmt(delays.p50, 0)} / {fmt(delays.p99, 0)} ms",
        "warm p50 idle / beside training": f"{fmt(idle_s.p50, 2)} / {fmt(busy_s.p50, 2)} ms",
    }
    return section
