"""Chat with the SmolLM2 endpoint through boto3's `invoke_endpoint_with_response_stream`, printing the answer
as its tokens come, as with a SageMaker LLM container.

    python examples/generative/chat_boto3_stream.py "What is the capital of France?"
    python examples/generative/chat_boto3_stream.py -i        # a conversation: one line per turn, ^D ends

The body is TGI's Messages API (`messages`, `max_tokens`, `stream`), which SageMaker's LLM containers accept;
the stream is a sequence of `PayloadPart` events whose bytes, joined, are server-sent-event lines
`data:{"object": "chat.completion.chunk", "choices": [{"delta": {"content": ...}}], ...}`. A PayloadPart may
end mid-line, so the bytes are buffered and split on newlines. `temperature: 0` is greedy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from _client import ENDPOINT, client


def lines(event_stream: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """Whole lines out of the PayloadPart events, however the server split them."""
    buffered = b""
    for event in event_stream:
        if "PayloadPart" not in event:
            continue  # ModelStreamError / InternalStreamFailure are raised by botocore itself
        buffered += event["PayloadPart"]["Bytes"]
        *complete, buffered = buffered.split(b"\n")
        yield from complete
    if buffered:
        yield buffered


def chat_chunks(event_stream: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for line in lines(event_stream):
        if not line.startswith(b"data:"):
            continue
        data = line[len(b"data:") :].strip()
        if data == b"[DONE]":
            return
        yield json.loads(data)


def stream_reply(runtime: Any, endpoint: str, messages: list[dict[str, str]], max_tokens: int) -> str:
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    started = time.perf_counter()
    response = runtime.invoke_endpoint_with_response_stream(
        EndpointName=endpoint, ContentType="application/json", Body=json.dumps(body)
    )
    reply, first_token_s = [], None
    for chunk in chat_chunks(response["Body"]):
        for choice in chunk.get("choices", []):
            text = choice.get("delta", {}).get("content") or ""
            if text and first_token_s is None:
                first_token_s = time.perf_counter() - started
            reply.append(text)
            print(text, end="", flush=True)
    print()
    took_s = time.perf_counter() - started
    print(f"[first token {1000 * (first_token_s or took_s):.0f} ms, all {took_s:.2f} s]", file=sys.stderr)
    return "".join(reply)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prompt", nargs="?", default="What is the capital of France? Answer in one sentence.")
    parser.add_argument("-i", "--interactive", action="store_true", help="read one user turn per line")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--endpoint", default=ENDPOINT)
    parser.add_argument("--url", help="the server (default: ZEROSERVE_URL, else http://127.0.0.1:8080)")
    args = parser.parse_args(argv)
    runtime = client("sagemaker-runtime", args.url)
    messages: list[dict[str, str]] = []
    turns = (line.strip() for line in sys.stdin) if args.interactive else iter([args.prompt])
    for turn in turns:
        if not turn:
            continue
        messages.append({"role": "user", "content": turn})
        reply = stream_reply(runtime, args.endpoint, messages, args.max_tokens)
        messages.append({"role": "assistant", "content": reply})
    return 0


if __name__ == "__main__":
    sys.exit(main())
