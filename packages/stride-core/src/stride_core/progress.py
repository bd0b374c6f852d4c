"""Progress display for long work (training steps, sampling), on stderr."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
LOG_INTERVAL_S = 15.0


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
    """A progress bar on a terminal; plain lines every 15 s in logs (SLURM, CI); none if STRIDE_PROGRESS=0."""
    if os.environ.get("STRIDE_PROGRESS", "1") == "0":
        yield from items
    elif sys.stderr.isatty():
        yield from tqdm(items, total=total, desc=desc, file=sys.stderr)
    else:
        yield from _logged(items, total, desc)


def _logged(items: Iterable[T], total: int | None, desc: str) -> Iterator[T]:
    start = last = time.perf_counter()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.perf_counter()
        if now - last >= LOG_INTERVAL_S or done == total:
            rate = done / max(now - start, 1e-9)
            eta = f", about {(total - done) / rate:.0f} s left" if total else ""
            print(f"{desc}: {done}/{total or '?'} ({rate:.2f}/s{eta})", file=sys.stderr, flush=True)
            last = now


def get_logger(tool: str) -> logging.Logger:
    """A logger printing `tool: message` to stderr."""
    logger = logging.getLogger(tool)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{tool}: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
