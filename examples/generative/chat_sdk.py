"""Ask the SmolLM2 endpoint with the SageMaker Python SDK: `Predictor.predict` for a whole answer, and
`predict_stream` with the SDK's `LineIterator` for the tokens as they come (TGI's token events).

    python examples/generative/chat_sdk.py "What is the capital of France?"

The request is the toolkit's: `{"inputs": [chat messages], "parameters": {...}}`; chat messages go through
the model's chat template and the answer is the conversation with the assistant's turn appended. Streamed
(`"stream": true`, as for SageMaker's LLM container), each line is `data:{"token": {"id", "text", "logprob",
"special"}, "generated_text": null, ...}` and the last one carries the whole `generated_text`.
The SDK's clients are pointed at the server explicitly here; after `eval "$(zeroserve env)"` a plain
`sagemaker.Session()` finds it too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# SDK v2 warns on import and on each Predictor that v3 exists; the notebooks this stands for use v2.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

import boto3
import sagemaker
from _client import ENDPOINT, client
from sagemaker.deserializers import JSONDeserializer
from sagemaker.iterators import LineIterator
from sagemaker.serializers import JSONSerializer


def session(url: str | None) -> sagemaker.Session:
    sm = client("sagemaker", url)
    return sagemaker.Session(
        boto_session=boto3.Session(region_name=sm.meta.region_name),
        sagemaker_client=sm,
        sagemaker_runtime_client=client("sagemaker-runtime", url),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prompt", nargs="?", default="What is the capital of France? Answer in one sentence.")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--endpoint", default=ENDPOINT)
    parser.add_argument("--url", help="the server (default: ZEROSERVE_URL, else http://127.0.0.1:8080)")
    args = parser.parse_args(argv)
    predictor = sagemaker.Predictor(
        args.endpoint,
        sagemaker_session=session(args.url),
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
    )
    messages = [{"role": "user", "content": args.prompt}]
    parameters = {"max_new_tokens": args.max_new_tokens, "do_sample": False}

    answer = predictor.predict({"inputs": messages, "parameters": parameters})
    # The toolkit's chat answer: the messages with the assistant's turn appended.
    print("predict:", answer[0]["generated_text"][-1]["content"])

    print("predict_stream: ", end="", flush=True)
    started = time.perf_counter()
    first_token_s = None
    stream = predictor.predict_stream(
        {"inputs": messages, "parameters": parameters, "stream": True}, iterator=LineIterator
    )
    for line in stream:
        if not line.startswith(b"data:"):
            continue
        event = json.loads(line[len(b"data:") :])
        if event.get("generated_text") is not None:
            break  # the last event: the whole text, already printed token by token
        if first_token_s is None:
            first_token_s = time.perf_counter() - started
        if not event["token"]["special"]:
            print(event["token"]["text"], end="", flush=True)
    print()
    took_s = time.perf_counter() - started
    print(f"[first token {1000 * (first_token_s or took_s):.0f} ms, all {took_s:.2f} s]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
