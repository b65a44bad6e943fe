// Fills under test, as the Service makes them (src/registry/blob_fill.h),
// on the one-node rig of tests/unit/registry_fakes.h: sources the test
// drives, a real cache, fake clients.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "src/registry/blob_fill.h"
#include "src/registry/blob_stream.h"
#include "tests/unit/registry_fakes.h"
#include "util/sha256.h"

namespace fillrig {

using fakes::Client;
using fakes::Rig;
using fakes::Source;
using registry::BlobFill;
using registry::FillSource;
using util::DigestOf;

inline constexpr uint64_t kMiB = 1 << 20;

inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

inline FillSource From(const std::shared_ptr<Source>& s, const std::string& label,
                       const std::string& peer = "") {
  return {label, peer, [s](const registry::SourceRequest& r, upstream::Callbacks cb) {
            s->method = r.method;
            s->offset = r.offset;
            s->cb = std::move(cb);
            return std::shared_ptr<upstream::InFlight>(s);
          }};
}

inline std::string Path(const util::Digest& d) { return "/v2/team/app/blobs/" + d.ToString(); }

// One fill under test, as the Service makes them.
struct Fill {
  std::shared_ptr<BlobFill> fill;
  bool done = false;
  int done_calls = 0;                                       // on_done must come once
  std::vector<std::pair<std::string, bool>> peer_failures;  // (peer, corrupt)
  int resumed = 0;
  std::vector<bool> mismatches;  // verification failures: from a peer?
  Rig& rig;
  util::Digest digest;
  Fill(Rig& r, const util::Digest& d, bool may_store = true,
       std::shared_ptr<registry::InFlightBytes> budget = nullptr)
      : rig(r), digest(d) {
    BlobFill::Env env{&r.clock,
                      r.store.get(),
                      r.bridge.get(),
                      r.keeper.get(),
                      std::move(budget),
                      [this](const util::Digest&, BlobFill*) {
                        done = true;
                        ++done_calls;
                      },
                      [this](const std::string& peer, const std::string&, bool corrupt) {
                        peer_failures.push_back({peer, corrupt});
                      },
                      [this] { ++resumed; },
                      [this](bool from_peer) { mismatches.push_back(from_peer); }};
    fill = std::make_shared<BlobFill>(std::move(env), d, may_store);
  }
  // One client, one source, started: how most tests begin. Returns the client.
  std::shared_ptr<Client> StartOne(const std::shared_ptr<Source>& s,
                                   const std::string& label = "upstream test",
                                   const std::string& peer = "") {
    auto c = Client::Make(rig.deferred.get(), Path(digest));
    fill->Join(c->ex);
    fill->Start({From(s, label, peer)});
    return c;
  }
};

inline bool Stored(Rig& r, const util::Digest& d) {
  auto txn = r.store->BeginRead();
  cache::BlobInfo info;
  return txn.ok() && r.store->GetBlob(*txn, d, &info).ok();
}

// Serves a cached blob to `c`, as the Service does on a hit.
inline void ServeFromCache(Rig& r, const util::Digest& d, const std::shared_ptr<Client>& c) {
  auto txn = r.store->BeginRead();
  cache::BlobInfo info;
  REQUIRE(r.store->GetBlob(*txn, d, &info).ok());
  *txn = cache::ReadTxn();
  registry::BlobStream::ServeCached(r.store.get(), r.keeper.get(), d, info, c->ex,
                                    r.clock.WallMs());
}

// Fills `blob` completely from one source, with one client, and waits until it is cached.
inline void FillWhole(Rig& r, const std::string& blob) {
  util::Digest d = DigestOf(blob);
  Fill f(r, d);
  auto src = std::make_shared<Source>();
  auto c = f.StartOne(src);
  src->Answer(200, blob);
  bool ok = r.RunUntil([&] { return f.done && c->done(); });
  INFO("writer pending " << r.bridge->pending() << ", client status " << c->status << ", "
                         << c->body.size() << " bytes, ended " << c->ended << ", fill done "
                         << f.done);
  REQUIRE(ok);
  REQUIRE(c->body == blob);
}

}  // namespace fillrig
