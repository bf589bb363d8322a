"""The heap handed back to the OS: freed small allocations leave the resident set after
``return_freed_memory`` (glibc only), and the arena limit is taken."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hivethink import memory

pytestmark = pytest.mark.skipif(memory._libc() is None, reason="not glibc")


def test_freed_heap_leaves_the_resident_set_and_the_arena_limit_is_taken():
    # In a fresh interpreter: the arena limit is process-wide, and the test process's heap is not
    # this test's to trim. 2,000 blocks of 100 KB (under glibc's mmap threshold: they come from
    # the heap), every page written, then freed: glibc keeps them until trimmed.
    script = textwrap.dedent("""
        import os
        from hivethink.memory import limit_malloc_arenas, return_freed_memory
        def rss():
            return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
        assert limit_malloc_arenas(2)
        blocks = [bytearray(b"x" * 100_000) for _ in range(2000)]
        held = rss()
        keep = blocks[-1]  # the heap's top stays in use: only a trim gives back what lies below it
        del blocks
        freed = rss()
        assert return_freed_memory()
        print(held, freed, rss())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    held, freed, trimmed = map(int, out.split())
    assert freed > held - 50  # free() alone kept the pages (nearly all of the 200 MB)
    assert trimmed < freed - 150  # the trim handed them back
