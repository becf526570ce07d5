"""An Observer for unit tests: keeps the worker events the code under test reports, ignores the rest."""

from __future__ import annotations

from zeroserve.metrics.events import WorkerEvent


class Events:
    def __init__(self) -> None:
        self.events: list[WorkerEvent] = []

    @property
    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    @property
    def log(self) -> list[tuple[str, str]]:
        return [(event.endpoint, event.kind) for event in self.events]

    def invocation(self, record: object) -> None:
        pass

    def worker(self, event: WorkerEvent) -> None:
        self.events.append(event)

    def concurrency(self, *args: object) -> None:
        pass
