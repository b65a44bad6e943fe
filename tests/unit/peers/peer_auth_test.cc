// Signed peer requests (peers/peer_auth.h).
#include "peers/peer_auth.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/test_signers.h"
#include "util/sha256.h"

using testing_keys::KeyFor;
using util::DigestOf;

namespace {
// What the server does with a request at hand: the head, then the body.
template <typename FindFn>
util::Status Verify(peers::PeerAuth& auth, const std::string& method, const std::string& target,
                    const std::string& body, FindFn find, uint64_t now_ms, std::string* node,
                    peers::VerifiedHead* head = nullptr) {
  peers::VerifiedHead h;
  util::Status st = auth.VerifyHead(method, target, find, now_ms, &h);
  if (st.ok() && !peers::PeerAuth::BodyMatches(body, h.body_sha))
    return util::Status::PermissionDenied("body");
  *node = h.node;
  if (head) *head = h;
  return st;
}
}  // namespace

TEST_CASE(
    "peer auth: signed requests verify once; anything changed, stale or replayed is refused") {
  peers::PeerAuth signer("0123456789abcdef-cluster-key", 30000),
      checker("0123456789abcdef-cluster-key", 30000);
  uint64_t now = 1'790'000'000'000;
  auto n1 = KeyFor("n1");
  auto headers = signer.Sign("n1", *n1, "POST", "/_georeg/v1/msg", "{\"x\":1}", now);
  auto find_in = [](const std::vector<peers::PeerHeader>& hs) {
    return [hs](std::string_view name) -> const std::string* {
      for (const auto& h : hs) {
        std::string lower = h.name;
        for (auto& c : lower) c = static_cast<char>(std::tolower(c));
        if (lower == name) return &h.value;
      }
      return nullptr;
    };
  };
  std::string node;
  peers::VerifiedHead head;
  CHECK(Verify(checker, "POST", "/_georeg/v1/msg", "{\"x\":1}", find_in(headers), now + 5, &node,
               &head)
            .ok());
  CHECK(node == "n1");
  // The node signature signs the same text, under n1's own key only.
  CHECK(n1->Verify(n1->public_key(), head.signed_text, head.node_signature));
  CHECK_FALSE(n1->Verify(KeyFor("n2")->public_key(), head.signed_text, head.node_signature));
  CHECK(head.signed_text.find("/_georeg/v1/msg") != std::string::npos);
  // The same request again is a replay.
  CHECK(Verify(checker, "POST", "/_georeg/v1/msg", "{\"x\":1}", find_in(headers), now + 6, &node)
            .code() == util::Code::kPermissionDenied);
  auto fresh = [&](uint64_t t) {
    return signer.Sign("n1", *n1, "GET", "/_georeg/v1/blobs/x?hop=owner", "", t);
  };
  peers::PeerAuth other_key("another-key-of-16-bytes", 30000);
  CHECK(!Verify(other_key, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in(fresh(now)), now,
                &node)
             .ok());
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=peer", "", find_in(fresh(now + 1)), now,
                &node)
             .ok());
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "body", find_in(fresh(now + 2)),
                now, &node)
             .ok());
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in(fresh(now - 31000)),
                now, &node)
             .ok());
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in(fresh(now + 31000)),
                now, &node)
             .ok());
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in({}), now, &node).ok());
  // Another node name with the same signature does not pass.
  auto h = fresh(now + 3);
  h[0].value = "n2";  // X-Georeg-Node
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in(h), now, &node).ok());
  CHECK(Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in(fresh(now + 4)), now,
               &node)
            .ok());
}
