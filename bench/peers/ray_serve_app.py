"""Ray Serve, as its docs show it: one `@serve.deployment` class holding the model, an async `__call__` that
reads the request JSON. Defaults: one replica, Ray's default max_ongoing_requests, no batching. Tuned as
Ray's performance guide advises (PEER_* variables, see classifiers.tuning): `num_replicas`,
`max_ongoing_requests` raised so requests reach the replicas, and `@serve.batch` for the model call.

python ray_serve_app.py --mode pipeline|onnx --checkpoint DIR --bundle DIR --port N; POST /predict.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import ray
from classifiers import arguments, build, tuning
from ray import serve
from starlette.requests import Request


@serve.deployment
class Classifier:
    def __init__(self, mode: str, checkpoint: str, bundle: str) -> None:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        self.classify = build(mode, checkpoint, bundle)

    async def __call__(self, request: Request) -> Any:
        data = await request.json()
        return self.classify(data["inputs"])


class BatchedClassifier:
    def __init__(self, mode: str, checkpoint: str, bundle: str) -> None:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        self.classify = build(mode, checkpoint, bundle)

    @serve.batch(
        max_batch_size=int(tuning("PEER_MAX_BATCH_SIZE", 16)),
        batch_wait_timeout_s=tuning("PEER_BATCH_WAIT_MS", 10) / 1000,
    )
    async def predict(self, texts: list[str]) -> list[Any]:
        return self.classify(texts)

    async def __call__(self, request: Request) -> Any:
        data = await request.json()
        return await self.predict(data["inputs"])


def _application(args: Any) -> Any:
    if not tuning("PEER_MAX_BATCH_SIZE"):
        return Classifier.bind(args.mode, args.checkpoint, args.bundle)
    deployment = serve.deployment(
        BatchedClassifier,
        num_replicas=int(tuning("PEER_WORKERS", 1)),
        max_ongoing_requests=int(tuning("PEER_MAX_ONGOING", 64)),
        ray_actor_options={"num_cpus": 0},  # the replicas share the cores with the proxy, as every peer does
    )
    return deployment.bind(args.mode, args.checkpoint, args.bundle)


def main() -> None:
    args = arguments()
    here = os.path.dirname(os.path.abspath(__file__))
    env = {"PYTHONPATH": here, **{k: v for k, v in os.environ.items() if k.startswith("PEER_")}}
    # address="local": a cluster of its own, never one someone else started on this machine.
    ray.init(address="local", include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(_application(args), route_prefix="/predict")

    def stop(*_: object) -> None:
        serve.shutdown()
        ray.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
