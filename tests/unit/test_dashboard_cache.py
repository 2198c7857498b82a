"""The dashboard's page cache: pages are read again only when their copy is old, asked fresh, or failed."""

from __future__ import annotations

from services.dashboard.sections import PageCache, PageData, Section


class Reads:
    """A page reader that counts its reads; ``fail`` makes its one section fail."""

    def __init__(self):
        self.count = 0
        self.fail = False

    def __call__(self) -> PageData:
        self.count += 1
        if self.fail:
            return PageData({"rows": Section("rows", error="the warehouse does not answer")})
        return PageData({"rows": Section("rows", value=[self.count])})


def test_a_page_read_a_moment_ago_is_served_from_the_cache():
    cache, read = PageCache(60), Reads()
    first = cache.get("analytics", read)
    again = cache.get("analytics", read)
    assert read.count == 1 and again is first


def test_a_fresh_request_reads_again_and_keeps_the_new_copy():
    cache, read = PageCache(60), Reads()
    cache.get("analytics", read)
    fresh = cache.get("analytics", read, fresh=True)
    assert read.count == 2 and fresh["rows"].value == [2]
    assert cache.get("analytics", read) is fresh


def test_a_page_with_a_failed_section_is_not_kept():
    cache, read = PageCache(60), Reads()
    read.fail = True
    assert cache.get("pipeline", read)["rows"].failed
    read.fail = False
    assert cache.get("pipeline", read)["rows"].value == [2]


def test_no_cache_seconds_reads_every_time_and_pages_are_kept_apart():
    cache, read = PageCache(0), Reads()
    cache.get("analytics", read)
    cache.get("analytics", read)
    assert read.count == 2
    kept, other = PageCache(60), Reads()
    kept.get("analytics", read)
    kept.get("pipeline", other)
    assert other.count == 1
