"""What the numbers were measured on: cores, CPU model, memory, load, software versions, the command."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import sys
from dataclasses import dataclass


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        return float("nan")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu_model: str
    memory_gib: float
    python: str
    kernel: str
    versions: dict[str, str]

    @classmethod
    def describe(cls) -> Machine:
        return cls(
            cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0,
            cpu_model=_cpu_model(),
            memory_gib=_memory_gib(),
            python=platform.python_version(),
            kernel=platform.release(),
            versions={
                p: _version(p) for p in ("zeroserve", "onnxruntime", "torch", "transformers", "uvicorn")
            },
        )

    def one_line(self) -> str:
        return f"{self.cores} cores, {self.cpu_model}, {self.memory_gib:.0f} GiB RAM, Linux {self.kernel}"


def command_line(argv: list[str] | None = None) -> str:
    """The command that reproduces this run, as typed from the repository root."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python -m bench", *(shlex.quote(a) for a in args)])
