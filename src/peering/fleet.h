// Fleet: what the registry's modules ask of the fleet, as one interface:
// who this node is and who else is there, where a miss goes, requests to
// peers, and the fleet's tag table. peering::Cluster is the fleet on the
// wire; a unit test gives the modules a stand-in (several nodes in one
// process, no sockets).
//
// Loop thread only. Functions that take a callback follow the callback
// contract: called exactly once, later, never from inside the call.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "peers/routing.h"
#include "peers/tag_table.h"
#include "src/http/headers.h"
#include "src/upstream/client.h"
#include "util/digest.h"
#include "util/status.h"

namespace peering {

class Fleet {
 public:
  virtual ~Fleet() = default;

  // This node's name and region.
  virtual const std::string& name() const = 0;
  virtual const std::string& region() const = 0;
  // Us and every member we know, with whether it is live (alive or suspect).
  struct NodeInfo {
    std::string name, region;
    bool live = false;
  };
  virtual std::vector<NodeInfo> Nodes() const = 0;
  // A PeerStep to a member by name (hop peer), if it is known.
  virtual std::optional<peers::PeerStep> StepTo(const std::string& name) const = 0;

  // Where a miss of `digest` goes before the upstream (peers::PlanRoute),
  // and this node's role for it. Blobs use the peers' summaries; manifests
  // (not in summaries) ask the nearest few. Nodes in `prefer` (known to
  // have it: the node a gossiped tag came from, a pushed image's holders)
  // come right after the region owner, nearest first, asked with hop peer
  // (peers::PreferHolders).
  virtual peers::RoutePlan Plan(const util::Digest& digest, peers::Hop incoming, bool blob,
                                peers::Scope scope,
                                const std::vector<std::string>& prefer = {}) const = 0;
  // Durable copies of pushed images: the members asked to hold one, in
  // order (peers::ReplicaCandidates).
  virtual std::vector<peers::PeerStep> ReplicaCandidates() const = 0;
  // The live nodes of our region that keep a tag before gossip brings it
  // (peers::TagKeepers, us left out): where a tag this node has not heard
  // of yet is asked.
  virtual std::vector<peers::PeerStep> TagRegionOwners(const peers::TagKey& key) const = 0;
  // Regions holding a replica (where durable copies go first), and drained
  // ones (routing disabled: no request of ours goes to their members,
  // except from inside the region). Set by the Replicator.
  virtual void SetRegionPolicy(std::set<std::string> replicated, std::set<std::string> drained) = 0;
  virtual bool Routable(const std::string& region) const = 0;

  // A signed GET or HEAD of `oci_target` ("/v2/...?ns=...") on a peer, with
  // `headers` besides the signature (a Range). Null when it could not be
  // started (then `cb` is never called).
  virtual std::shared_ptr<upstream::InFlight> Send(const peers::PeerStep& step,
                                                   const std::string& method,
                                                   const std::string& oci_target,
                                                   std::vector<http::Header> headers,
                                                   upstream::Callbacks cb,
                                                   upstream::FetchOptions options = {}) = 0;
  // A peer fetch failed mid-body; `corrupt`: its bytes failed verification
  // (the peer is quarantined).
  virtual void ReportFailure(const std::string& peer, const std::string& why, bool corrupt) = 0;
  // Asks `step` to keep a copy of the manifest at `oci_target` (/v2/<repo>/
  // manifests/<digest>?ns=...) and everything it references, fetched from
  // us; `done` once, later: Ok when it holds all of it.
  virtual void Hold(const peers::PeerStep& step, const std::string& oci_target,
                    std::function<void(util::Status)> done) = 0;

  // A tag change seen at an upstream, or made by a push (gossiped when it
  // changed the table); `value` as peers::TagVersion::value. Returns the
  // current version.
  virtual peers::TagUpdate RecordTag(const std::string& registry, const std::string& repository,
                                     const std::string& tag, const util::Digest& digest,
                                     const std::string& value = "") = 0;
  // Sends `u` straight to the keepers of its tag in every region, and calls
  // `done` once, later, when each answered or failed: how a push is
  // readable in every region when it is acknowledged.
  virtual void PushTag(const peers::TagUpdate& u,
                       std::function<void(size_t told, size_t asked)> done) = 0;
  // Fleet state this node kept across a restart (GossipNode::Restore).
  virtual bool Restore(const peers::TagUpdate& u) = 0;
  // The table's version of a tag; null when unknown.
  virtual const peers::TagVersion* FindTag(const peers::TagKey& key) const = 0;
  // The node that made the current version of a tag, or "" when unknown.
  virtual std::string TagOrigin(const std::string& registry, const std::string& repository,
                                const std::string& tag) const = 0;
  // Every fleet record of one registry (peers::TagTable::EntriesOf).
  virtual std::vector<peers::TagUpdate> FleetEntries(const std::string& registry) const = 0;
};

}  // namespace peering
