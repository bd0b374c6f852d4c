"""What the benchmarks record about the machine: CPU, memory, load, competing processes, page cache state.

The page cache matters for read benchmarks: a store just written or read is served from RAM. Dropping the
whole cache needs root (/proc/sys/vm/drop_caches); without it, posix_fadvise(POSIX_FADV_DONTNEED) asks the
kernel to forget the clean cached pages of the store's own files, which is what `evict` does, and
`resident_fraction` checks with mincore(2) how much of the store is cached. On a virtual disk the host may
still cache the image, so an evicted read is "not in this VM's page cache", not necessarily "from the platter".
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import mmap
import os
import platform
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
_MAP_FAILED = ctypes.c_void_p(-1).value


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_bf16() -> dict[str, Any]:
    """Which native bf16 instructions this CPU reports, and the SIMD level torch dispatches to."""
    import torch

    from stride_train.precision import BF16_CPU_FLAGS, cpu_flags

    flags = cpu_flags()
    return {
        "bf16_flags": {flag: flag in flags for flag in BF16_CPU_FLAGS},
        "avx512f": "avx512f" in flags,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def machine() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gb": round(memory.total / 1e9, 1),
        "memory_available_gb": round(memory.available / 1e9, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def load() -> dict[str, Any]:
    """Load averages (1, 5, 15 min) and the processes using the most CPU over the last second."""
    mine = {os.getpid(), *(child.pid for child in psutil.Process().children(recursive=True))}
    processes = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.pid not in mine]
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.cpu_percent(None)
    psutil.cpu_percent(None)
    time.sleep(1.0)
    busy = []
    for process in processes:
        try:
            percent = process.cpu_percent(None)
        except psutil.Error:
            continue
        if percent >= 5:
            command = " ".join(process.info["cmdline"] or [process.info["name"] or "?"])
            busy.append({"pid": process.pid, "cpu_percent": percent, "command": command[:120]})
    return {
        "loadavg": [round(value, 2) for value in os.getloadavg()],
        "cpu_percent_all": psutil.cpu_percent(None),
        "other_busy_processes": sorted(busy, key=lambda row: -row["cpu_percent"])[:8],
    }


def store_files(path: Path) -> Iterator[Path]:
    for root, _, names in os.walk(path):
        for name in names:
            yield Path(root) / name


def _resident(path: Path, page: int) -> tuple[int, int]:
    """(resident pages, pages) of one file, from mincore(2) on a read-only shared mapping."""
    size = path.stat().st_size
    if size == 0:
        return 0, 0
    pages = (size + page - 1) // page
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, _MAP_FAILED):
            return 0, pages
        try:
            vector = (ctypes.c_ubyte * pages)()
            if _libc.mincore(address, size, vector) != 0:
                return 0, pages
            return sum(byte & 1 for byte in vector), pages
        finally:
            _libc.munmap(address, size)
    finally:
        os.close(fd)


def resident_fraction(path: Path) -> float:
    """Share of the store's file pages now in the OS page cache."""
    page = mmap.PAGESIZE
    resident = total = 0
    for file in store_files(path):
        done, pages = _resident(file, page)
        resident, total = resident + done, total + pages
    return resident / total if total else 0.0


def evict(path: Path) -> None:
    """Ask the kernel to drop the store's clean pages from the page cache (no root needed, advisory)."""
    for file in store_files(path):
        fd = os.open(file, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_all(path: Path) -> int:
    """Read every file of the store once (to warm the page cache); returns the bytes read."""
    total = 0
    for file in store_files(path):
        total += len(file.read_bytes())
    return total


class TreeMemory:
    """Samples the summed RSS of processes and their descendants on a thread until stopped (peak memory of a
    command that starts workers: the children of a CLI, or a Dask scheduler and its workers)."""

    interval_s = 0.02

    def __init__(self, pid: int, *others: int) -> None:
        self.roots = [psutil.Process(p) for p in (pid, *others)]
        self.peak_bytes = 0
        self.peak_processes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = []
            for root in self.roots:
                try:
                    tree += [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
            if not tree:
                return
            total = 0
            for process in tree:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.samples += 1
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_processes = total, len(tree)
            self._stop.wait(self.interval_s)
