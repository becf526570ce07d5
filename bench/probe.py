"""`python -m bench.probe`: time one bundle in a fresh process and print the results as one JSON line.

Reads a JSON spec on stdin: {"bundle": dir, "count": n, "inputs": {name: text or [texts]},
"classify": [texts]}. Prints {"load_ms": ..., "latencies_ms": {name: [...]}, "labels": [...]}.
A runtime measured in its own process cannot be slowed by another runtime's thread pool (onnxruntime and
torch in one process slow torch down ~10x here).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench import inprocess


def main() -> int:
    spec = json.load(sys.stdin)
    handler, load_s = inprocess.load(Path(spec["bundle"]), threads=spec.get("threads"))
    result = {
        "load_ms": load_s * 1000,
        "latencies_ms": {
            name: inprocess.latencies_ms(handler, text, int(spec["count"]))
            for name, text in spec["inputs"].items()
        },
        "labels": inprocess.classify(handler, spec.get("classify") or []),
    }
    print(json.dumps(result))
    return 0


def run(
    bundle: Path,
    count: int,
    inputs: dict[str, object],
    classify: list[str] | None = None,
    threads: int | None = None,
) -> dict[str, object]:
    """Run the probe in a child process (same interpreter) and return its result; `threads` overrides the
    runtime's intra-op threads (default: zeroserve's, every core)."""
    import subprocess

    from bench import REPO_ROOT

    spec = {"bundle": str(bundle), "count": count, "inputs": inputs, "classify": classify, "threads": threads}
    done = subprocess.run(
        [sys.executable, "-m", "bench.probe"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe failed: {done.stderr.strip()[-500:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    sys.exit(main())
