"""Templates per variant (workers/template.py): which to keep, within the machine's memory budget.

A template is a process that has loaded a variant's bundle and forks its cold starts, so a cold start costs
a fork and a warm-up instead of a load. It is built in the background after a plain cold start of a variant
whose workers run one runtime thread (the only sessions that survive fork), when its memory fits without
stopping anything but older templates. Its memory (what it does not share with the zygote, measured once it
has loaded) is reserved on the server's own node (its MemoryLedger) as `template:<variant key>`.

It is dropped, least recently used first, when a worker needs the memory (before any idle worker is
stopped), when it has not been used for `idle_ttl_s` (an endpoint unused for long costs nothing again),
when its variant is replaced or deleted, and when it dies (it is rebuilt at the next cold start). A cold
start never waits for a template: without a live one it takes the zygote's plain path.

`TemplatePolicy` is the pure part (no processes, no asyncio: times are passed in) and the only writer of the
entries; `TemplateCache` does the building and dropping it implies, on the pool's injected clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from zeroserve.metrics.events import Observer, WorkerEvent, WorkerEventKind
from zeroserve.scheduler.clock import Clock, EarliestTimer
from zeroserve.scheduler.eviction import Evictable, least_recently_used
from zeroserve.scheduler.nodes import Node
from zeroserve.scheduler.snapshot import TemplateSnapshot
from zeroserve.workers.spec import WorkerSpec
from zeroserve.workers.template_link import TemplateFailed, TemplateInfo

log = logging.getLogger("zeroserve.templates")

# Before a template has loaded its memory is not known: reserve its bundle's size times this (a loaded
# session holds about its weights once, the tokenizer a few times its file), then the measured figure.
ESTIMATE_FACTOR = 1.5
ESTIMATE_BASE_MB = 16


def holder(key: str) -> str:
    return f"template:{key}"


@dataclass
class TemplateEntry:
    key: str
    endpoint: str
    variant: str
    memory_mb: int
    last_used_s: float
    ready: bool = False
    pid: int = 0


class TemplatePolicy:
    """The templates kept and when each was last used; decisions as pure functions of them and the time.
    Its methods are the only writers of the entries; `entries` is for reading."""

    def __init__(self, idle_ttl_s: float) -> None:
        self.idle_ttl_s = idle_ttl_s
        self._entries: dict[str, TemplateEntry] = {}

    @property
    def entries(self) -> Mapping[str, TemplateEntry]:
        return self._entries

    @property
    def memory_mb(self) -> int:
        return sum(entry.memory_mb for entry in self._entries.values())

    def add(self, entry: TemplateEntry) -> None:
        self._entries[entry.key] = entry

    def remove(self, key: str) -> TemplateEntry | None:
        return self._entries.pop(key, None)

    def loaded(self, key: str, memory_mb: int, pid: int) -> None:
        """The template finished loading: it holds `memory_mb` as measured, and is usable."""
        entry = self._entries[key]
        entry.memory_mb, entry.ready, entry.pid = memory_mb, True, pid

    def usable(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.ready

    def touch(self, key: str, now_s: float) -> None:
        if key in self._entries:
            self._entries[key].last_used_s = now_s

    def droppable_mb(self, keep: str = "") -> int:
        return sum(e.memory_mb for e in self._entries.values() if e.key != keep)

    def evictions(self, needed_mb: int, free_mb: int, keep: str = "") -> list[str] | None:
        """Templates to drop, least recently used first, so `needed_mb` fits; None if dropping them all
        (but `keep`) is not enough."""
        candidates = (
            Evictable(e.key, e.memory_mb, e.last_used_s) for e in self._entries.values() if e.key != keep
        )
        return least_recently_used(needed_mb, free_mb, candidates)

    def expired(self, now_s: float) -> list[str]:
        return [e.key for e in self._entries.values() if now_s - e.last_used_s >= self.idle_ttl_s]

    def next_expiry_s(self) -> float | None:
        if not self._entries:
            return None
        return min(e.last_used_s for e in self._entries.values()) + self.idle_ttl_s


class TemplateBuilder(Protocol):
    """Where templates come from (workers/hub.py)."""

    templates_supported: bool

    async def build_template(self, key: str, spec: WorkerSpec, timeout_s: float) -> TemplateInfo: ...

    def drop_template(self, key: str) -> None: ...

    def template_closed(self, key: str) -> asyncio.Future[None] | None: ...


def estimate_mb(bundle_dir: str) -> int:
    try:
        size = sum(path.stat().st_size for path in Path(bundle_dir).iterdir() if path.is_file())
    except OSError:
        size = 0
    return ESTIMATE_BASE_MB + math.ceil(ESTIMATE_FACTOR * size / (1024 * 1024))


class TemplateCache:
    """The templates of the server's own node: built, kept and dropped on its memory, through the node."""

    def __init__(
        self,
        builder: TemplateBuilder,
        node: Node,
        clock: Clock,
        observer: Observer,
        *,
        idle_ttl_s: float,
        build_timeout_s: float,
    ) -> None:
        self.builder = builder
        self.node = node
        self.clock = clock
        self.observer = observer
        self.build_timeout_s = build_timeout_s
        self.policy = TemplatePolicy(idle_ttl_s)
        self._expiry = EarliestTimer(clock, self._expire)
        self._tasks: set[asyncio.Task[None]] = set()
        # Variants whose template failed to load: not tried again at every cold start (until replaced).
        self._failed: set[str] = set()

    @property
    def enabled(self) -> bool:
        return self.policy.idle_ttl_s > 0 and self.builder.templates_supported

    def entries(self) -> Sequence[TemplateEntry]:
        return list(self.policy.entries.values())

    def snapshots(self) -> list[TemplateSnapshot]:
        now = self.clock.now()
        return [
            TemplateSnapshot(e.endpoint, e.variant, e.pid or None, e.ready, e.memory_mb, now - e.last_used_s)
            for e in self.policy.entries.values()
        ]

    def for_cold_start(self, key: str) -> str:
        """The template key a cold start of this variant forks from ("" for the zygote), marked as used."""
        if not self.policy.usable(key):
            return ""
        self.policy.touch(key, self.clock.now())
        return key

    def after_cold_start(self, key: str, spec: WorkerSpec) -> None:
        """A plain cold start of `spec`'s variant just ended: build its template in the background if it
        may have one and the memory fits without stopping anything but older templates."""
        if not self.enabled or spec.threads != 1 or key in self.policy.entries or key in self._failed:
            return
        needed = estimate_mb(spec.bundle_dir)
        if not self.make_room(needed, keep=key):
            return
        if not self.node.reserve(holder(key), needed):
            return
        self.policy.add(TemplateEntry(key, spec.endpoint, spec.variant, needed, self.clock.now()))
        task = asyncio.get_running_loop().create_task(self._build(key, spec))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def make_room(self, needed_mb: int, keep: str = "") -> bool:
        """Drop least recently used templates until `needed_mb` fits; False (none dropped) if it cannot."""
        chosen = self.policy.evictions(needed_mb, self.node.ledger.free_mb, keep)
        if chosen is None:
            return False
        for key in chosen:
            self.drop(key, "evicted for memory")
        return True

    def forget_variant(self, key: str) -> None:
        """The variant was replaced or deleted: drop its template and what we knew of it."""
        self._failed.discard(key)
        self.drop(key, "the variant was replaced or deleted")

    def drop(self, key: str, reason: str) -> None:
        entry = self.policy.remove(key)
        if entry is None:
            return
        self.node.release(holder(key))
        self.builder.drop_template(key)
        if entry.ready:
            self.observer.worker(
                WorkerEvent(
                    entry.endpoint,
                    entry.variant,
                    WorkerEventKind.TEMPLATE_DROPPED,
                    memory_mb=entry.memory_mb,
                    reason=reason,
                )
            )

    def droppable_mb(self, keep: str = "") -> int:
        return self.policy.droppable_mb(keep)

    def drop_all(self, keep: str = "", reason: str = "stopped") -> None:
        for key in list(self.policy.entries):
            if key != keep:
                self.drop(key, reason)

    def close(self) -> None:
        self.drop_all()
        for task in list(self._tasks):
            task.cancel()
        self._expiry.cancel()

    async def _build(self, key: str, spec: WorkerSpec) -> None:
        template_spec = WorkerSpec(
            worker_id=key,
            bundle_dir=spec.bundle_dir,
            memory_mb=spec.memory_mb,
            threads=1,
            env=spec.env,
            endpoint=spec.endpoint,
            variant=spec.variant,
        )
        try:
            info = await self.builder.build_template(key, template_spec, self.build_timeout_s)
        except TemplateFailed as exc:
            log.info("no template for %s: %s", key, exc)
            self._failed.add(key)
            self._forget(key)
            return
        except BaseException:
            self._forget(key)
            raise
        entry = self.policy.entries.get(key)
        if entry is None:  # dropped while it loaded (evicted, variant replaced)
            self.builder.drop_template(key)
            return
        # Hold what it measured instead of the estimate; if even that no longer fits, let it go.
        self.node.release(holder(key))
        measured = max(1, math.ceil(info.private_mb))
        if not self.make_room(measured, keep=key) or not self.node.reserve(holder(key), measured):
            self.policy.remove(key)
            self.builder.drop_template(key)
            return
        self.policy.loaded(key, measured, info.pid)
        self.observer.worker(
            WorkerEvent(
                entry.endpoint,
                entry.variant,
                WorkerEventKind.TEMPLATE_READY,
                setup_ms=info.setup_ms,
                rss_mb=info.rss_mb,
                memory_mb=measured,
            )
        )
        closed = self.builder.template_closed(key)
        if closed is None:  # it died before we could watch it
            self.drop(key, "the template exited")
            return
        closed.add_done_callback(self._on_closed(key, info.pid))
        self._expiry.schedule(entry.last_used_s + self.policy.idle_ttl_s)

    def _on_closed(self, key: str, pid: int) -> Callable[[asyncio.Future[None]], None]:
        def closed(_: asyncio.Future[None]) -> None:
            entry = self.policy.entries.get(key)
            if entry is not None and entry.pid == pid:  # died on its own: rebuilt at the next cold start
                self.drop(key, "the template exited")

        return closed

    def _forget(self, key: str) -> None:
        if self.policy.remove(key) is not None:
            self.node.release(holder(key))

    def _expire(self) -> None:
        for key in self.policy.expired(self.clock.now()):
            self.drop(key, "idle")
        when = self.policy.next_expiry_s()
        if when is not None:
            self._expiry.schedule(max(when, self.clock.now()))
