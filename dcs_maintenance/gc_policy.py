"""The cyclic garbage collector's policy for a function process: leave what a cold start builds alone.

A cold start builds most of what the process keeps until it is recycled: the modules (the SDK's 400 model
modules when something is due), the schedule catalog (10,000 schedules are 100,000 objects), the compiled
crons and the next-fire cache. While that grows, the collector scans it again and again: on a first tick over
10,000 schedules its full collections cost a third of the tick. So the first invocation runs with the
collector paused, and what it built is then frozen (`gc.freeze`: never scanned again); later invocations
collect as usual, over what they allocate. Python frees acyclic garbage by reference counting either way; the
few reference cycles a cold start leaves (a traceback, an import's) stay frozen, once per process.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_cold = [True]


@contextmanager
def invocation() -> Iterator[None]:
    """Wrap one invocation: the process's first runs with the collector paused, then freezes what it built."""
    if not _cold[0] or not gc.isenabled():
        yield
        return
    _cold[0] = False
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
