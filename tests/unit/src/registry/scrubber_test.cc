// The background scrub (src/registry/scrubber.h): a chunk corrupted on
// disk is found, counted, and its blob leaves the cache.
#include "src/registry/scrubber.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include "tests/unit/registry_fakes.h"
#include "tests/unit/src/registry/fill_rig.h"
#include "util/sha256.h"

using fillrig::DigestOf;
using fillrig::FillWhole;
using fillrig::kMiB;
using fillrig::RandomBytes;
using fillrig::Rig;
using fillrig::Stored;

TEST_CASE("scrubber: a chunk corrupted on disk is found, counted, and its blob leaves the cache") {
  Rig r;
  std::string good = RandomBytes(kMiB, 12), bad = RandomBytes(kMiB, 13);
  FillWhole(r, good);
  FillWhole(r, bad);
  r.Settle();
  // Flip one byte of `bad` in the data file, under LMDB's feet (bit rot).
  std::string path = r.dir + "/data.mdb";
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  std::string needle = bad.substr(4096, 64);
  off_t at = -1;
  std::vector<char> buf(1 << 20);
  for (off_t off = 0; at < 0; off += static_cast<off_t>(buf.size() - needle.size())) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
    if (n <= 0) break;
    std::string_view view(buf.data(), static_cast<size_t>(n));
    if (size_t p = view.find(needle); p != std::string_view::npos) at = off + static_cast<off_t>(p);
  }
  REQUIRE(at >= 0);
  char c;
  REQUIRE(::pread(fd, &c, 1, at) == 1);
  c ^= 0x40;
  REQUIRE(::pwrite(fd, &c, 1, at) == 1);
  ::close(fd);
  registry::Scrubber scrubber(&r.loop, r.store.get(), r.keeper.get(), 64 * kMiB);
  scrubber.Start();  // a batch every second (a loop timer)
  REQUIRE(r.RunUntil(
      [&] { return r.keeper->corruptions() == 1 && scrubber.bytes_checked() >= 2 * kMiB; }));
  CHECK_FALSE(r.keeper->Has(DigestOf(bad)));
  CHECK(r.keeper->Has(DigestOf(good)));
  scrubber.Stop();
  r.Settle();
  CHECK_FALSE(Stored(r, DigestOf(bad)));
  CHECK(r.Close() == 0);
}
