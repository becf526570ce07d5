"""Deploy the SmolLM2 model.tar.gz as a serverless endpoint with boto3, as on SageMaker.

    python examples/generative/deploy.py [--model examples/generative/build/model.tar.gz] [--url URL]

CreateModel (HF_TASK text-generation; without it zeroserve infers it from LlamaForCausalLM, as the toolkit
does) -> CreateEndpointConfig (ServerlessConfig: 2048 MB, 4 concurrent requests; a stream holds one of them
for as long as it runs) -> CreateEndpoint, then waits for InService. zeroserve exports the model to ONNX at
this point, once per artifact (about 40 s for SmolLM2 on 2 cores); later deploys of the same file reuse it.
An endpoint of that name already there is deleted first, so the script can be rerun.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from _client import ENDPOINT, client
from botocore.exceptions import ClientError, WaiterError

HERE = Path(__file__).resolve().parent
ROLE = "arn:aws:iam::000000000000:role/zeroserve"  # any well-formed role ARN: zeroserve has no IAM


def delete_if_present(sm: Any, name: str) -> None:
    for call, key in (
        ("delete_endpoint", "EndpointName"),
        ("delete_endpoint_config", "EndpointConfigName"),
        ("delete_model", "ModelName"),
    ):
        with contextlib.suppress(ClientError):
            getattr(sm, call)(**{key: name})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=HERE / "build" / "model.tar.gz")
    parser.add_argument("--name", default=ENDPOINT)
    parser.add_argument("--url", help="the server (default: ZEROSERVE_URL, else http://127.0.0.1:8080)")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"{args.model} not found: run examples/generative/build_model.py first", file=sys.stderr)
        return 1
    sm = client("sagemaker", args.url)
    delete_if_present(sm, args.name)
    started = time.perf_counter()
    sm.create_model(
        ModelName=args.name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "huggingface-pytorch-inference",  # not used by zeroserve; SageMaker needs the image URI
            "ModelDataUrl": args.model.resolve().as_uri(),
            "Environment": {"HF_TASK": "text-generation"},
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName=args.name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": args.name,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 4},
            }
        ],
    )
    sm.create_endpoint(EndpointName=args.name, EndpointConfigName=args.name)
    try:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=args.name, WaiterConfig={"Delay": 2, "MaxAttempts": 300}
        )
    except WaiterError:
        described = sm.describe_endpoint(EndpointName=args.name)
        reason = described.get("FailureReason")
        print(f"{args.name}: {described['EndpointStatus']}: {reason}", file=sys.stderr)
        return 1
    print(f"{args.name}: InService in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
