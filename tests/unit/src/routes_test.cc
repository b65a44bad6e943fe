// The registry port's route table (src/routes.h): each path reaches the
// module declared for it, the first match wins, methods narrow peer routes.
#include <catch2/catch.hpp>

#include "src/routes.h"

using routes::Endpoint;
using routes::MatchRoute;

TEST_CASE("routes: every path of the registry port reaches its module") {
  CHECK(MatchRoute("GET", "/_georeg/v1/status") == Endpoint::kStatus);
  CHECK(MatchRoute("POST", "/_georeg/v1/status") == Endpoint::kStatus);  // it answers 405
  CHECK(MatchRoute("GET", "/ui") == Endpoint::kUiRedirect);
  CHECK(MatchRoute("GET", "/ui/") == Endpoint::kUiPage);
  CHECK(MatchRoute("HEAD", "/ui/world.path") == Endpoint::kUiWorld);
  CHECK(MatchRoute("PUT", "/_georeg/v1/registries/fleet/replications/japaneast") ==
        Endpoint::kReplications);
  CHECK(MatchRoute("POST", "/_georeg/v1/msg") == Endpoint::kPeerMessage);
  CHECK(MatchRoute("GET", "/_georeg/v1/summary") == Endpoint::kPeerSummary);
  CHECK(MatchRoute("GET", "/_georeg/v1/oci/v2/team/app/blobs/sha256:00") == Endpoint::kPeerContent);
  CHECK(MatchRoute("HEAD", "/_georeg/v1/oci/v2/team/app/manifests/1.0") == Endpoint::kPeerContent);
  CHECK(MatchRoute("POST", "/_georeg/v1/hold/v2/team/app/manifests/sha256:00") ==
        Endpoint::kPeerHold);
  CHECK(MatchRoute("GET", "/v2/") == Endpoint::kOci);
  CHECK(MatchRoute("GET", "/v2/library/alpine/manifests/3.19") == Endpoint::kOci);
  CHECK(MatchRoute("GET", "/healthz") == Endpoint::kOci);
}

TEST_CASE("routes: a peer route with another method, or an unknown one, is a peer's 404") {
  CHECK(MatchRoute("GET", "/_georeg/v1/msg") == Endpoint::kPeerOther);
  CHECK(MatchRoute("POST", "/_georeg/v1/summary") == Endpoint::kPeerOther);
  CHECK(MatchRoute("PUT", "/_georeg/v1/oci/v2/x/blobs/sha256:00") == Endpoint::kPeerOther);
  CHECK(MatchRoute("GET", "/_georeg/v1/hold/v2/x/manifests/sha256:00") == Endpoint::kPeerOther);
  CHECK(MatchRoute("GET", "/_georeg/v1/oci/x") == Endpoint::kPeerOther);  // not /v2/
  CHECK(MatchRoute("GET", "/_georeg/anything") == Endpoint::kPeerOther);
  // Near misses are not routes: exact paths are exact.
  CHECK(MatchRoute("GET", "/ui/other") == Endpoint::kOci);
  CHECK(MatchRoute("GET", "/_georeg/v1/statusx") == Endpoint::kPeerOther);
  CHECK(MatchRoute("GET", "/_georeg") == Endpoint::kOci);
}

TEST_CASE("routes: the kinds the access log and metrics count them under") {
  CHECK(std::string(routes::KindOf(Endpoint::kStatus)) == "api");
  CHECK(std::string(routes::KindOf(Endpoint::kReplications)) == "api");
  CHECK(std::string(routes::KindOf(Endpoint::kUiPage)) == "ui");
  CHECK(std::string(routes::KindOf(Endpoint::kPeerMessage)) == "gossip");
  CHECK(std::string(routes::KindOf(Endpoint::kPeerContent)) == "peer");
}
