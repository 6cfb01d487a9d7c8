"""`ggt view`'s memory follows its caches: freed image buffers go back to the system.

Each check runs in a fresh interpreter, as `ggt view` does, so allocator state and
statistics are the server's own, not this test session's. The end-to-end figure
(a sweep of 2,000 photo-sized images: 4.5x the caches' budget before, 0.86x after)
comes from bench/view_memory.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("starlette")


def _python(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.slow
def test_shard_reads_use_the_servers_pool_not_mimalloc(eval_set):
    """Opened by path, a shard's reads came from pyarrow's C++ default pool (mimalloc), which keeps what it frees."""
    out = _python(f"""
        import pyarrow as pa
        from ggt_dataset.view.app import return_freed_memory
        from ggt_dataset.view.index import build_index
        from ggt_dataset.view.source import open_source

        return_freed_memory()
        index = build_index(open_source({eval_set!r}))
        mimalloc = pa.mimalloc_memory_pool()
        before = mimalloc.max_memory()
        for row in range(index.num_rows):
            index.image(row, "hq")
        print(before, mimalloc.max_memory(), pa.default_memory_pool().max_memory())
    """)
    before, after, system = map(int, out.split())
    assert after == before and system > 0, out       # the old code: 80,000 bytes more in mimalloc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
@pytest.mark.slow
def test_a_freed_image_buffer_leaves_the_process():
    """After a 30 MB block is freed, glibc would serve a 20 MB one from a heap it keeps; not in the server."""
    out = _python("""
        import os
        from ggt_dataset.view.app import return_freed_memory

        return_freed_memory()
        rss = lambda: int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        big = b"x" * (30 << 20)            # a row group of images, read then evicted (pages touched)
        del big
        before = rss()
        blocks = [b"y" * (20 << 20) for _ in range(2)]    # more images, then freed
        del blocks
        print(rss() - before)
    """)
    assert int(out) < 8 << 20, f"{int(out) >> 20} MB kept after freeing"
