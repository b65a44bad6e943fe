#include <catch2/catch.hpp>

#include "cache/blob_index.h"

namespace {
util::Digest D(uint8_t n) {
  util::Digest d;
  d.bytes[0] = n;
  return d;
}
}  // namespace

TEST_CASE("eviction: least recently used first, whole blobs, until enough is freed") {
  cache::BlobIndex idx;
  idx.Add(D(1), 100, 1000);
  idx.Add(D(2), 100, 3000);
  idx.Add(D(3), 100, 2000);
  CHECK(idx.stored_bytes() == 300);
  CHECK(idx.ChooseEvictions(0).empty());
  CHECK(idx.ChooseEvictions(1) == std::vector<util::Digest>{D(1)});
  CHECK(idx.ChooseEvictions(150) == std::vector<util::Digest>{D(1), D(3)});
  CHECK(idx.ChooseEvictions(10000) == std::vector<util::Digest>{D(1), D(3), D(2)});
  // A read makes a blob recent.
  idx.Touch(D(1), 5000);
  CHECK(idx.ChooseEvictions(150) == std::vector<util::Digest>{D(3), D(2)});
  // Time never goes backwards for a blob.
  idx.Touch(D(1), 10);
  CHECK(idx.Find(D(1))->last_access_ms == 5000);
}

TEST_CASE("eviction: never a blob being served") {
  cache::BlobIndex idx;
  idx.Add(D(1), 100, 1000);
  idx.Add(D(2), 100, 2000);
  idx.Pin(D(1));
  idx.Pin(D(1));
  CHECK(idx.ChooseEvictions(200) == std::vector<util::Digest>{D(2)});
  idx.Unpin(D(1));
  CHECK(idx.ChooseEvictions(200) == std::vector<util::Digest>{D(2)});
  idx.Unpin(D(1));
  CHECK(idx.ChooseEvictions(200) == std::vector<util::Digest>{D(1), D(2)});
  idx.Pin(D(1));
  idx.Pin(D(2));
  CHECK(idx.ChooseEvictions(1).empty());  // everything is in use: nothing to evict
}

TEST_CASE("budget: reservations of fills in flight count, removal frees, ties are deterministic") {
  cache::BlobIndex idx;
  idx.Add(D(2), 10, 7);
  idx.Add(D(1), 10, 7);
  CHECK(idx.ChooseEvictions(5) == std::vector<util::Digest>{D(1)});
  idx.Reserve(50);
  CHECK(idx.committed_bytes() == 70);
  idx.Unreserve(50);
  idx.Unreserve(50);  // never below zero
  CHECK(idx.committed_bytes() == 20);
  idx.Remove(D(1));
  CHECK(idx.stored_bytes() == 10);
  CHECK(idx.count() == 1);
  idx.Add(D(2), 30, 9);  // re-adding replaces, not double-counts
  CHECK(idx.stored_bytes() == 30);
}

TEST_CASE("counts: cached and own blobs apart, each beside its bytes") {
  cache::BlobIndex idx;
  idx.Add(D(1), 10, 1);
  idx.Add(D(2), 20, 1, /*own=*/true);
  idx.Add(D(3), 30, 1, /*own=*/true);
  CHECK(idx.cached_count() == 1);
  CHECK(idx.stored_bytes() == 10);
  CHECK(idx.own_count() == 2);
  CHECK(idx.own_bytes() == 50);
  idx.SetOwn(D(1), true);  // a push adopts a cached blob
  CHECK(idx.cached_count() == 0);
  CHECK(idx.stored_bytes() == 0);
  CHECK(idx.own_count() == 3);
  idx.Add(D(2), 25, 1);  // re-added as cache: moves, not double-counts
  CHECK(idx.cached_count() == 1);
  CHECK(idx.own_count() == 2);
  CHECK(idx.own_bytes() == 40);
  idx.Remove(D(3));
  CHECK(idx.own_count() == 1);
  CHECK(idx.own_bytes() == 10);
  CHECK(idx.count() == idx.cached_count() + idx.own_count());
}

TEST_CASE("last access is persisted lazily") {
  cache::BlobIndex idx;
  idx.Add(D(1), 1, 1);
  idx.Add(D(2), 1, 1);
  CHECK(idx.TakeDirtyAccess().empty());
  idx.Touch(D(2), 9);
  auto dirty = idx.TakeDirtyAccess();
  REQUIRE(dirty.size() == 1);
  CHECK(dirty[0].first == D(2));
  CHECK(dirty[0].second == 9);
  CHECK(idx.TakeDirtyAccess().empty());
}

TEST_CASE(
    "verified chunks: remembered per blob, forgotten when the blob is removed or stored again") {
  cache::BlobIndex idx;
  idx.MarkVerified(D(1), 0);  // not listed: nothing to remember
  CHECK_FALSE(idx.Verified(D(1), 0));
  idx.Add(D(1), 3 << 20, 10);
  idx.MarkVerified(D(1), 2);
  CHECK(idx.Verified(D(1), 2));
  CHECK_FALSE(idx.Verified(D(1), 0));
  CHECK_FALSE(idx.Verified(D(1), 7));
  idx.SetOwn(D(1), true);  // the same stored bytes
  CHECK(idx.Verified(D(1), 2));
  idx.Add(D(1), 3 << 20, 20);  // stored again: the bytes may differ
  CHECK_FALSE(idx.Verified(D(1), 2));
  idx.MarkVerified(D(1), 1);
  idx.Remove(D(1));
  idx.Add(D(1), 3 << 20, 30);
  CHECK_FALSE(idx.Verified(D(1), 1));
}
