"""The worker's side of `mode: generate`: a real worker (`workers.worker.serve`) forked with a fake generative
handler, spoken to over a socketpair as the server does. Tokens come as frames before the result, a cancel
stops the generation within a token, frames that arrive meanwhile are answered afterwards, and a model that
does not generate says so, naming its task."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fake_generation import FakeGenerativeHandler
from zeroserve.runtimes.base import Generation, Invocation, Reply
from zeroserve.workers import worker
from zeroserve.workers.connection import WorkerConnection
from zeroserve.workers.protocol import FrameSocket
from zeroserve.workers.spec import WorkerSpec


class EchoHandler:
    """Not generative: answers toolkit requests only."""

    def warm_up(self) -> None:
        pass

    def handle_batch(self, invocations: list[Invocation]) -> list[Reply]:
        return [Reply(b"[]") for _ in invocations]


@contextmanager
def worker_with(handler: Any, step_fd: int | None = None) -> Iterator[FrameSocket]:
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        ours.close()
        spec = WorkerSpec("w1", "/nonexistent", 1024, env={"HF_TASK": "text-classification"})
        worker.serve(FrameSocket(theirs), spec, handler=handler)
    theirs.close()
    channel = FrameSocket(ours)
    try:
        ready = channel.recv()
        assert ready is not None and ready[0]["type"] == "ready"
        yield channel
    finally:
        ours.close()
        os.waitpid(pid, 0)


def invoke(channel: FrameSocket, request_id: int, prompt: str, **header: Any) -> None:
    body = json.dumps({"inputs": prompt}).encode()
    channel.send({"type": "invoke", "id": request_id, "content_type": "application/json", **header}, body)


def frames_until_result(channel: FrameSocket, request_id: int) -> list[tuple[dict[str, Any], bytes]]:
    frames = []
    while True:
        frame = channel.recv()
        assert frame is not None, "the worker hung up"
        frames.append(frame)
        if frame[0]["type"] == "result" and frame[0]["id"] == request_id:
            return frames


def test_generate_without_stream_answers_a_generation_and_no_token_frames() -> None:
    with worker_with(FakeGenerativeHandler()) as channel:
        invoke(channel, 1, "one two three", mode="generate")
        [(header, body)] = frames_until_result(channel, 1)
    assert header["status"] == "ok" and header["model_us"] > 0
    generation = Generation.from_json(body)
    assert generation.sequences[0].text == "one two three" and generation.sequences[0].tokens == 3
    assert generation.prompt_tokens == 3


def test_a_streamed_generation_sends_one_token_frame_per_token_before_its_result() -> None:
    with worker_with(FakeGenerativeHandler()) as channel:
        invoke(channel, 7, "one two three", mode="generate", stream=True)
        frames = frames_until_result(channel, 7)
    tokens = [header for header, _ in frames[:-1]]
    assert [t["type"] for t in tokens] == ["token"] * 3 and all(t["id"] == 7 for t in tokens)
    assert [t["token"] for t in tokens] == [
        {"index": 1, "id": 101, "text": "one", "logprob": -0.5, "special": False, "last": False},
        {"index": 2, "id": 102, "text": " two", "logprob": -0.5, "special": False, "last": False},
        {"index": 3, "id": 103, "text": " three", "logprob": -0.5, "special": False, "last": True},
    ]
    assert Generation.from_json(frames[-1][1]).sequences[0].text == "one two three"


def test_a_cancel_stops_the_generation_within_a_token_and_frames_read_meanwhile_are_answered() -> None:
    step_read, step_write = os.pipe()
    with worker_with(FakeGenerativeHandler(step_fd=step_read), step_fd=step_read) as channel:
        invoke(channel, 1, "a b c d e f g h", mode="generate", stream=True)
        os.write(step_write, b"x")
        first = channel.recv()
        assert first is not None and first[0]["token"]["index"] == 1
        # Read by the worker between two tokens: a plain invocation and a generation must wait, not vanish.
        invoke(channel, 2, "plain")
        invoke(channel, 3, "later words", mode="generate")
        channel.send({"type": "cancel", "id": 1})
        os.write(step_write, b"xxx")  # token 2 of request 1, then the two tokens of request 3
        frames = frames_until_result(channel, 1)
        # It stops at the first token after the cancel reached it: token 1 (if it polled after the test
        # sent the cancel) or token 2 (the one it makes next); never later.
        later = [h["token"]["index"] for h, _ in frames[:-1]]
        assert later in ([], [2]), "at most one more token, then it stops"
        result = Generation.from_json(frames[-1][1])
        assert result.sequences[0].tokens == 1 + len(later)
        assert result.sequences[0].text == ("a b" if later else "a")
        rest = {h["id"]: (h, b) for h, b in frames_until_result(channel, 3)}
    assert rest[2][0]["status"] == "ok" and rest[2][1] == b'[{"generated_text": "batch"}]'
    assert Generation.from_json(rest[3][1]).sequences[0].text == "later words"
    os.close(step_read)
    os.close(step_write)


def test_a_model_error_in_generate_is_the_requests_error_and_the_worker_serves_on() -> None:
    with worker_with(FakeGenerativeHandler()) as channel:
        invoke(channel, 1, "raise", mode="generate", stream=True)
        [(failed, _)] = frames_until_result(channel, 1)
        invoke(channel, 2, "refuse", mode="generate")
        [(refused, _)] = frames_until_result(channel, 2)
        invoke(channel, 3, "still here", mode="generate")
        [(answered, _)] = frames_until_result(channel, 3)
    assert failed["status"] == "error" and "the model broke" in failed["error"]
    assert refused["status"] == "client_error" and "bogus" in refused["error"]
    assert answered["status"] == "ok"


def test_a_model_that_does_not_generate_answers_generate_with_a_client_error_naming_its_task() -> None:
    with worker_with(EchoHandler()) as channel:
        invoke(channel, 1, "hi", mode="generate", stream=True)
        [(header, _)] = frames_until_result(channel, 1)
        invoke(channel, 2, "hi")
        [(plain, _)] = frames_until_result(channel, 2)
    assert header["status"] == "client_error"
    assert "text-classification" in header["error"] and "does not generate" in header["error"]
    assert plain["status"] == "ok"


def test_the_servers_connection_streams_tokens_then_the_reply_and_cancels_within_a_token() -> None:
    """WorkerConnection.submit_generate against the same forked worker: what the router reads."""
    step_read, step_write = os.pipe()

    async def scenario(channel: FrameSocket) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=channel.sock)
        connection = WorkerConnection("w1", 0, reader, writer)
        connection.start()
        whole = connection.submit_generate(b'{"inputs": "x y"}', "application/json", "", None, stream=True)
        os.write(step_write, b"xx")
        reply = await whole.reply
        assert [t.text for t in whole.take()] == ["x", " y"] and reply.status == "ok"
        call = connection.submit_generate(b'{"inputs": "a b c d"}', "application/json", "", None, stream=True)
        os.write(step_write, b"x")
        await call.ready()
        assert [t.index for t in call.take()] == [1] and connection.inflight == 1
        call.cancel()
        await asyncio.sleep(0)  # the reply's done-callbacks
        assert connection.inflight == 0, "free at once"
        os.write(step_write, b"x")  # the worker makes one more token, sees the cancel and answers
        after = connection.submit_generate(b'{"inputs": "z"}', "application/json", "", None, stream=False)
        os.write(step_write, b"x")
        assert Generation.from_json((await after.reply).body).sequences[0].text == "z"
        writer.close()

    with worker_with(FakeGenerativeHandler(step_fd=step_read)) as channel:
        asyncio.run(scenario(channel))
    os.close(step_read)
    os.close(step_write)
