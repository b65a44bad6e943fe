#include "src/routes.h"

#include <string>

#include "src/peering/cluster.h"
#include "src/registry/oci_errors.h"
#include "src/registry/replicator.h"
#include "src/registry/service.h"
#include "src/telemetry/status_page.h"

namespace routes {

namespace {

enum class Match { kExact, kPrefix };

struct Route {
  std::string_view methods;  // space-separated; "" any
  std::string_view path;
  Match match;
  Endpoint endpoint;
};

// In order: the first that matches wins.
constexpr Route kRoutes[] = {
    {"", telemetry::StatusPage::kPath, Match::kExact, Endpoint::kStatus},
    {"", "/ui", Match::kExact, Endpoint::kUiRedirect},
    {"", "/ui/", Match::kExact, Endpoint::kUiPage},
    {"", "/ui/world.path", Match::kExact, Endpoint::kUiWorld},
    {"", registry::Replicator::kPrefix, Match::kPrefix, Endpoint::kReplications},
    {"POST", peering::Cluster::kMsgPath, Match::kExact, Endpoint::kPeerMessage},
    {"GET", peering::Cluster::kSummaryPath, Match::kExact, Endpoint::kPeerSummary},
    {"GET HEAD", "/_georeg/v1/oci/v2/", Match::kPrefix, Endpoint::kPeerContent},
    {"POST", "/_georeg/v1/hold/v2/", Match::kPrefix, Endpoint::kPeerHold},
    {"", "/_georeg/", Match::kPrefix, Endpoint::kPeerOther},
};

static_assert(std::string_view(kRoutes[7].path).starts_with(peering::Cluster::kOciPrefix));
static_assert(std::string_view(kRoutes[8].path).starts_with(peering::Cluster::kHoldPrefix));

bool MethodIn(std::string_view methods, std::string_view method) {
  if (methods.empty()) return true;
  for (size_t pos = 0; pos <= methods.size();) {
    size_t end = methods.find(' ', pos);
    if (end == std::string_view::npos) end = methods.size();
    if (methods.substr(pos, end - pos) == method) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

Endpoint MatchRoute(std::string_view method, std::string_view path) {
  for (const Route& r : kRoutes) {
    bool at = r.match == Match::kExact ? path == r.path : path.substr(0, r.path.size()) == r.path;
    if (at && MethodIn(r.methods, method)) return r.endpoint;
  }
  return Endpoint::kOci;
}

const char* KindOf(Endpoint e) {
  switch (e) {
    case Endpoint::kStatus:
    case Endpoint::kReplications:
      return "api";
    case Endpoint::kUiRedirect:
    case Endpoint::kUiPage:
    case Endpoint::kUiWorld:
      return "ui";
    case Endpoint::kPeerContent:
      return "peer";
    case Endpoint::kPeerMessage:
    case Endpoint::kPeerSummary:
    case Endpoint::kPeerHold:
    case Endpoint::kPeerOther:
      return "gossip";
    case Endpoint::kOci:
      return "other";
  }
  return "other";
}

RegistryRoutes::RegistryRoutes(registry::Service* service, peering::Cluster* cluster,
                               const telemetry::StatusPage* status)
    : service_(service), cluster_(cluster), status_(status) {}

void RegistryRoutes::Handle(const std::shared_ptr<http::Exchange>& ex) {
  const http::Request& req = ex->request();
  std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
  Endpoint e = MatchRoute(req.method, path);
  ex->outcome().kind = KindOf(e);
  switch (e) {
    case Endpoint::kStatus:
      return status_->ServeStatus(ex);
    case Endpoint::kUiRedirect:
    case Endpoint::kUiPage:
    case Endpoint::kUiWorld:
      return status_->ServeUi(ex, e == Endpoint::kUiRedirect ? telemetry::StatusPage::kRedirect
                                  : e == Endpoint::kUiPage   ? telemetry::StatusPage::kPage
                                                             : telemetry::StatusPage::kWorld);
    case Endpoint::kReplications:
      return service_->replicator().Handle(ex);
    case Endpoint::kOci:
      return service_->Handle(ex);
    default:
      return HandlePeer(e, ex);
  }
}

void RegistryRoutes::HandlePeer(Endpoint e, const std::shared_ptr<http::Exchange>& ex) {
  if (!cluster_) {
    registry::RespondOciError(ex, 404, "UNSUPPORTED", "this node is not in a cluster");
    return;
  }
  registry::Service* service = service_;
  if (e == Endpoint::kPeerMessage) {
    cluster_->ReceiveMessage(ex, [service](peers::GossipNode::Learned l) { service->Learn(l); });
    return;
  }
  auto sender = cluster_->Authenticate(ex);
  if (!sender.ok()) return;  // answered
  const std::string& target = ex->request().target;
  switch (e) {
    case Endpoint::kPeerSummary:
      return cluster_->ServeSummary(ex);
    case Endpoint::kPeerContent: {
      auto content = cluster_->AcceptContent(ex, *sender);
      if (content.ok()) service_->HandlePeerContent(ex, content->oci_target, content->hop);
      return;
    }
    case Endpoint::kPeerHold:
      return service_->holdings().ServeHold(
          ex, target.substr(std::string_view(peering::Cluster::kHoldPrefix).size()), *sender);
    default:
      return peering::Cluster::RespondNoRoute(ex);
  }
}

}  // namespace routes
