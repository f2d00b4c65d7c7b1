"""A range reads the same from the page cache, from the disk (O_DIRECT) and in part from each."""

from __future__ import annotations

import os
import random

import pytest

from halo_live.indexer.readrange import ALIGN, read_range


def _drop_cache(path, start=0, length=0) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, start, length, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


@pytest.fixture
def data_file(tmp_path):
    rng = random.Random(7)
    data = bytes(rng.randrange(32, 127) for _ in range(3 * 1024 * 1024 + 123))
    path = tmp_path / "spans.jsonl"
    path.write_bytes(data)
    return str(path), data


RANGES = [(0, 10), (1, ALIGN - 1), (ALIGN - 3, 5 * ALIGN + 17), (12345, 2 * 1024 * 1024 + 99),
          (0, 3 * 1024 * 1024 + 123), (3 * 1024 * 1024, 3 * 1024 * 1024 + 123)]


@pytest.mark.parametrize("start,end", RANGES)
def test_a_range_reads_the_same_cached_and_from_the_disk(data_file, start, end):
    path, data = data_file
    assert bytes(read_range(path, start, end)) == data[start:end]  # in the page cache
    _drop_cache(path)
    assert bytes(read_range(path, start, end)) == data[start:end]  # from the disk


def test_a_range_half_in_the_cache_reads_whole(data_file):
    path, data = data_file
    _drop_cache(path, 1024 * 1024, 0)  # the first MB stays cached, the rest is read directly
    assert bytes(read_range(path, 1000, len(data))) == data[1000:]


def test_a_range_past_the_end_of_the_file_is_cut_at_the_end(data_file):
    path, data = data_file
    _drop_cache(path)
    assert bytes(read_range(path, len(data) - 50, len(data) + 5000)) == data[-50:]


def test_the_buffer_is_reused_and_grows(data_file):
    path, data = data_file
    small = read_range(path, 0, 100)
    assert bytes(small) == data[:100]
    del small
    assert bytes(read_range(path, 0, len(data))) == data
