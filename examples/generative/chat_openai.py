"""Chat with the SmolLM2 endpoint through zeroserve's OpenAI-compatible route with the official `openai`
client, streamed; the model is the endpoint's name.

    python examples/generative/chat_openai.py "What is the capital of France?"
    python examples/generative/chat_openai.py --completion "Once upon a time"   # /v1/completions

`base_url` is the server's `/v1`. With ZEROSERVE_API_KEYS set on the server, pass one of its keys as
`--api-key` (sent as `Authorization: Bearer`); without, any key is accepted. `temperature=0` is greedy.
"""

from __future__ import annotations

import argparse
import sys
import time

from _client import ENDPOINT, server_url
from openai import OpenAI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prompt", nargs="?", default="What is the capital of France? Answer in one sentence.")
    parser.add_argument("--completion", action="store_true", help="a plain completion, no chat template")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--endpoint", default=ENDPOINT)
    parser.add_argument("--api-key", default="unused", help="one of the server's ZEROSERVE_API_KEYS, if set")
    parser.add_argument("--url", help="the server (default: ZEROSERVE_URL, else http://127.0.0.1:8080)")
    args = parser.parse_args(argv)
    openai = OpenAI(base_url=server_url(args.url) + "/v1", api_key=args.api_key)
    started = time.perf_counter()
    first_token_s = None
    if args.completion:
        stream = openai.completions.create(
            model=args.endpoint, prompt=args.prompt, max_tokens=args.max_tokens, temperature=0, stream=True
        )
        print(args.prompt, end="", flush=True)
        texts = (chunk.choices[0].text if chunk.choices else "" for chunk in stream)
    else:
        chat = openai.chat.completions.create(
            model=args.endpoint,
            messages=[{"role": "user", "content": args.prompt}],
            max_tokens=args.max_tokens,
            temperature=0,
            stream=True,
        )
        texts = ((chunk.choices[0].delta.content or "") if chunk.choices else "" for chunk in chat)
    for text in texts:
        if text and first_token_s is None:
            first_token_s = time.perf_counter() - started
        print(text, end="", flush=True)
    print()
    took_s = time.perf_counter() - started
    print(f"[first token {1000 * (first_token_s or took_s):.0f} ms, all {took_s:.2f} s]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
