"""Time and memory of a block of code in this process.

Memory is the growth of the resident set (RSS) over the block: its peak minus what the
process held when the block started. Every measured block runs in a fresh worker
process (``bench/worker.py``), so memory freed by an earlier step but kept by Python's
allocator cannot hide a peak. On Linux the kernel's own peak (``VmHWM``) is reset at
the start of the block through ``/proc/self/clear_refs`` and read at its end: exact,
no sampling. Elsewhere a thread samples the RSS every 2 ms with psutil.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from pathlib import Path

MB = 1_000_000  # the spec's MB (a megabyte, not a mebibyte)
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss() -> int:
    """Bytes resident now."""
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb * 1024
    import psutil

    return psutil.Process().memory_info().rss


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS; False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


class PeakRSS:
    """``with PeakRSS() as memory: …`` then ``memory.growth`` (bytes) and ``memory.method``."""

    def __init__(self) -> None:
        self.start = 0
        self.peak = 0
        self.method = ""
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.start = current_rss()
        if _reset_peak():
            self.method = "VmHWM"
        else:
            self.method = "psutil-sampled"
            self.peak = self.start
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        import psutil

        process = psutil.Process()
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
        else:
            self.peak = (_status_kb("VmHWM") or 0) * 1024
        self.peak = max(self.peak, current_rss())

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.start)


class Timer:
    """``with Timer() as timer: …`` then ``timer.seconds``."""

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``values`` (nearest rank: p95 of 20 samples is the 19th)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
