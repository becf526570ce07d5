"""Ray Serve, as its docs show it: one `@serve.deployment` class holding the model, an async `__call__` that
reads the request JSON; defaults for replicas, ongoing requests and CPUs.

python ray_serve_app.py --mode pipeline|onnx --checkpoint DIR --bundle DIR --port N; POST /predict.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import ray
from classifiers import arguments, build
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


def main() -> None:
    args = arguments()
    here = os.path.dirname(os.path.abspath(__file__))
    ray.init(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": here}})
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(Classifier.bind(args.mode, args.checkpoint, args.bundle), route_prefix="/predict")

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
