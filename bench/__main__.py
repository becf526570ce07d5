"""`python -m bench`: run the benchmark sections and write BENCHMARKS.md plus bench/plots/*.png.

    python -m bench                 # everything (~20 min on 2 cores); writes BENCHMARKS.md
    python -m bench --quick         # smoke run, small samples (< 2 min); writes bench/results/
    python -m bench --only warm     # some sections (comma-separated); writes bench/results/

Only a full run of every section writes BENCHMARKS.md, so that file always holds one run's numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

from bench import REPO_ROOT
from bench.context import Context, log
from bench.machine import Machine, command_line, load_average
from bench.report import Section, render
from bench.sections import SECTIONS


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small samples, a smoke run of every section")
    parser.add_argument("--only", default="", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write")
    parser.add_argument("--no-train", action="store_true", help="never train the sentiment model")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    complete = not args.quick and names == list(SECTIONS)
    out = args.out or (
        REPO_ROOT / "BENCHMARKS.md" if complete else REPO_ROOT / "bench" / "results" / "BENCHMARKS.md"
    )
    plots_dir = REPO_ROOT / "bench" / "plots" if out == REPO_ROOT / "BENCHMARKS.md" else out.parent / "plots"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ctx = Context(quick=args.quick, plots_dir=plots_dir, allow_training=not args.no_train)
    started, load_before = time.time(), load_average()
    machine = Machine.describe()
    sections: list[Section] = []
    failed = 0
    for name in names:
        log(f"section {name}")
        begun, load_at_start = time.perf_counter(), load_average()
        try:
            section = SECTIONS[name].run(ctx)
        except Exception as exc:  # one broken section must not lose the others' numbers
            failed += 1
            traceback.print_exc()
            section = Section(name, f"{SECTIONS[name].TITLE} (failed)")
            section.findings.append(f"This section failed: `{type(exc).__name__}: {str(exc)[:300]}`")
        section.duration_s = time.perf_counter() - begun
        section.load_before = load_at_start
        sections.append(section)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(sections, machine, command_line(argv), started, load_before, out.parent))
    log(f"wrote {out} ({(time.time() - started) / 60:.1f} min)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
