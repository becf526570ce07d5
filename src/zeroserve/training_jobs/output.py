"""What a training job prints: its lines batched into its CloudWatch log stream, searched by its
MetricDefinitions, and its last error lines kept for the FailureReason.

Lines arrive on the event loop from the job's pipes; a timer flushes them to the log sink at most
`flush_s` later, so a chatty job costs one sink write per batch, and a line is readable within ~0.1 s.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence

from zeroserve.logs.sink import TRAINING_JOBS_GROUP, LogEvent, LogSink
from zeroserve.training_jobs.metrics import MetricScanner
from zeroserve.training_jobs.process import Outcome
from zeroserve.training_jobs.spec import MetricDefinition
from zeroserve.training_jobs.workspace import Workspace

log = logging.getLogger("zeroserve.training_jobs")
FLUSH_S = 0.1
_ERROR_TAIL_LINES = 20


class JobOutput:
    def __init__(
        self,
        sink: LogSink,
        stream: str,
        definitions: Sequence[MetricDefinition],
        clock: Callable[[], float],
        flush_s: float = FLUSH_S,
    ) -> None:
        self.sink = sink
        self.stream = stream
        self.metrics = MetricScanner(definitions)
        self.clock = clock
        self.flush_s = flush_s
        self._pending: list[LogEvent] = []
        self._timer: asyncio.TimerHandle | None = None
        self._error_tail: collections.deque[str] = collections.deque(maxlen=_ERROR_TAIL_LINES)

    def on_line(self, source: str, line: str) -> None:
        """A line the job printed (`source` is "stdout" or "stderr")."""
        now = self.clock()
        self._pending.append((int(now * 1000), line))
        self.metrics.scan(line, now)
        if source == "stderr" and line.strip():
            self._error_tail.append(line.strip())
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_s, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            self.sink.put(TRAINING_JOBS_GROUP, self.stream, batch)
        except Exception:  # the job goes on without its log rather than failing for it
            log.exception("could not write training log stream %s", self.stream)

    def last_error(self) -> str:
        """The last line that looks like an error (a traceback's last line), else the last line on stderr."""
        lines = list(self._error_tail)
        for line in reversed(lines):
            if "Error" in line or "Exception" in line or line.lower().startswith("error"):
                return line[:500]
        return lines[-1][:500] if lines else "the script printed nothing on stderr"

    def failure_reason(self, workspace: Workspace, outcome: Outcome) -> str:
        """As SageMaker words it: the script's own output/failure, else how it ended and its last error."""
        try:
            written = workspace.failure_file.read_text(errors="replace").strip()
        except OSError:
            written = ""
        if written:
            return f"AlgorithmError: {written}"
        if outcome.signal_name is not None:
            cause = f"killed by {outcome.signal_name}"
            if outcome.signal_name == "SIGKILL":
                cause += " (out of memory, or killed from outside)"
            return f"AlgorithmError: the training process was {cause}. {self.last_error()}".strip()
        return (
            f"AlgorithmError: ExecuteUserScriptError: ExitCode {outcome.returncode} "
            f'ErrorMessage "{self.last_error()}"'
        )
