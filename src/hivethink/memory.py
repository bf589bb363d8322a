"""The process's heap: glibc keeps what PyTorch frees (its CPU tensors come from malloc), so a
server's resident set grows with the largest passes it has run unless the heap is handed back.
No-ops where the C library is not glibc."""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
from functools import cache
from typing import Any

M_ARENA_MAX = -8  # mallopt's parameter number for the most malloc arenas (glibc's malloc.h)
MADV_DONTNEED = 4  # madvise's advice: drop the pages (private anonymous memory reads as zeros after)
# A server's: its request threads allocate little but would each get an arena of their own.
SERVER_MALLOC_ARENAS = 2


@cache
def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if all(hasattr(libc, f) for f in ("malloc_trim", "mallopt", "madvise")) else None
    except OSError:
        return None


def return_freed_memory() -> bool:
    """Hand the heap's free pages back to the OS (glibc's ``malloc_trim``) -> whether any went."""
    libc = _libc()
    return libc is not None and bool(libc.malloc_trim(0))


def limit_malloc_arenas(arenas: int) -> bool:
    """At most ``arenas`` malloc arenas for threads created from now on. glibc gives each thread
    that allocates its own arena (up to 8 per core), each keeping its freed memory: a server's
    request threads held 170-220 MiB that way (docs/performance.md). -> whether glibc took it."""
    libc = _libc()
    return libc is not None and bool(libc.mallopt(M_ARENA_MAX, arenas))


def drop_pages(address: int, nbytes: int) -> int:
    """Hand back to the OS the whole memory pages inside ``[address, address + nbytes)`` of memory
    this process owns and no longer needs the contents of: private anonymous memory (the heap, a
    large tensor's storage) reads as zeros when touched again, and is resident only then.
    -> bytes handed back (0 off glibc, or when the range holds no whole page)."""
    libc = _libc()
    start = -(-address // mmap.PAGESIZE) * mmap.PAGESIZE
    end = (address + nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
    if libc is None or end <= start:
        return 0
    ok = libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), MADV_DONTNEED) == 0
    return end - start if ok else 0
