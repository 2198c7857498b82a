"""A process's own peak resident memory, for the benchmarks' child processes."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_bytes() -> int:
    """The high-water mark of this process's resident memory since it started its program.

    Read from ``VmHWM`` in ``/proc/self/status``, which belongs to the program's own address space.
    ``getrusage``'s ``ru_maxrss`` is not that: Linux carries the forked parent's high-water mark across
    ``exec``, so a child of a large process (pytest, the bench) reported the parent's size (283-355 MB for
    an unzipper that peaked at about 150 MB). Where there is no ``/proc``, ``ru_maxrss`` it is.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
