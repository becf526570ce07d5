"""A worker's output as the server reads it: whole lines from chunks, long lines cut, a chatty worker held to
its rate, and the last lines before EOF kept even when the rate dropped them (a dying traceback)."""

from __future__ import annotations

import asyncio

from zeroserve.workers.output import OutputLines, pump


def test_lines_are_joined_across_chunks_and_blank_ones_skipped() -> None:
    lines = OutputLines()
    assert lines.feed(b"hello wo", 0.0) == []
    assert lines.feed(b"rld\r\n\nsecond\nthi", 0.0) == ["hello world", "second"]
    assert lines.close(0.0) == ["thi"]  # the unterminated last line is not lost at EOF


def test_a_long_line_is_cut_and_says_how_much_was_cut() -> None:
    lines = OutputLines(max_line_bytes=10)
    assert lines.feed(b"0123456789abcdef\nshort\n", 0.0) == ["0123456789 [... 6 bytes cut]", "short"]
    # One that arrives in pieces is held to the cap while it grows, not only when it ends.
    assert lines.feed(b"abcdefgh", 0.0) == []
    assert lines.feed(b"ijklmnop", 0.0) == []
    assert lines.feed(b"q\n", 0.0) == ["abcdefghij [... 7 bytes cut]"]


def test_a_chatty_worker_is_held_to_its_rate_and_told_what_was_dropped() -> None:
    lines = OutputLines(lines_per_s=10, burst_lines=5, tail_lines=2)
    flood = b"".join(f"line {i}\n".encode() for i in range(20))
    assert lines.feed(flood, 0.0) == [f"line {i}" for i in range(5)]
    assert lines.feed(b"still flooding\n", 0.05) == []  # half a token: nothing passes
    # 0.3 s later three tokens are back: the note of what is lost comes first, then what fits, the newest
    # dropped lines (the tail) first, so that lines written together are not cut apart by the moment.
    assert lines.feed(b"a\nb\nc\nd\n", 0.35) == [
        "zeroserve: 14 lines of this worker's output were dropped (over 10 lines/s)",
        "line 19",
        "still flooding",
        "a",
    ]


def test_the_last_lines_before_eof_land_even_when_the_rate_dropped_them() -> None:
    lines = OutputLines(lines_per_s=1, burst_lines=3, tail_lines=3)
    lines.feed(b"".join(f"spam {i}\n".encode() for i in range(1000)), 0.0)
    traceback = b'Traceback (most recent call last):\n  File "inference.py", line 9\nRuntimeError: boom\n'
    assert lines.feed(traceback, 0.1) == []
    assert lines.close(0.1) == [
        "zeroserve: 1000 lines of this worker's output were dropped (over 1 lines/s); its last 3 lines"
        " follow",
        "Traceback (most recent call last):",
        '  File "inference.py", line 9',
        "RuntimeError: boom",
    ]


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[str, str, str, list[tuple[int, str]]]] = []

    def worker_output(self, endpoint: str, variant: str, worker_id: str, lines: object) -> None:
        self.got.append((endpoint, variant, worker_id, list(lines)))  # type: ignore[call-overload]


def test_pump_reads_until_eof_and_stamps_lines_with_the_clock() -> None:
    async def scenario() -> Sink:
        reader = asyncio.StreamReader()
        reader.feed_data(b"printed\nwarn")
        reader.feed_data(b"ing\nlast words")
        reader.feed_eof()
        sink = Sink()
        hello = {"role": "output", "worker_id": "w7", "endpoint": "e", "variant": "AllTraffic"}
        await pump(hello, reader, sink, clock=lambda: 1_764_580_000.5)
        return sink

    sink = asyncio.run(scenario())
    stamp = 1_764_580_000_500
    assert sink.got == [
        ("e", "AllTraffic", "w7", [(stamp, "printed"), (stamp, "warning")]),
        ("e", "AllTraffic", "w7", [(stamp, "last words")]),
    ]
