"""`python -m bench.peak MODULE ARGS...`: run a module as `python -m` would, then write the
process's peak RSS in KiB, and its children's largest, to the file named by BENCH_PEAK_FILE.

A parent reading ru_maxrss after wait4 gets the larger of the child's peak and its own: exec
records the peak of the address space it replaces, which fork shares with the parent. VmHWM
belongs to the address space exec made, so it is the child's own.
"""

from __future__ import annotations

import os
import resource
import runpy
import sys
from pathlib import Path


def peak_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def main() -> None:
    module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        # Children: the forked file reader of a large local load (shared/core/forked.py). Its
        # peak counts the pages it still shares with this process, so the sum overstates.
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        Path(os.environ["BENCH_PEAK_FILE"]).write_text(f"{peak_kib()} {children}")


if __name__ == "__main__":
    main()
