"""`python -m zeroserve.workers.guard MODULE ARGS...`: run MODULE as __main__, dying with the server.

For the helper subprocesses the server starts (model conversion): Linux SIGKILLs the child when its parent
dies, so a `kill -9` of the server leaves no converter running on. ZEROSERVE_SERVER_PID closes the race where
the server died before the request took effect.
"""

from __future__ import annotations

import os
import runpy
import sys

from zeroserve.workers.zygote import die_with_parent


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m zeroserve.workers.guard MODULE [ARGS...]")
    die_with_parent()
    server_pid = os.environ.get("ZEROSERVE_SERVER_PID")
    if server_pid and os.getppid() != int(server_pid):
        sys.exit("zeroserve: the server exited before this helper started")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
