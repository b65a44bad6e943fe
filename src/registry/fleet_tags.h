// FleetTags: the tags of the fleet's own registry, and the other fleet
// records of it (replications, sync reports: push/replication.h), as this
// node keeps them (docs/replication.md).
//
// The cluster's tag table (gossip, last writer wins by HLC) decides what a
// tag names; FleetTags keeps the store in step with it: Record() makes a
// change here (a push, a delete) and tells the tag's keepers in every
// region before answering; ApplyGossiped() takes one learned from a peer,
// notes its holders and fetches its manifest; every version is kept across
// restarts (the fleet database) and put back into the table by Restore().
//
// Without a cluster the store is the truth and Record only writes it.
//
// Ownership: borrows the store, writer, hints, holdings and cluster (null
// without one), which outlive it. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cache/store.h"
#include "config/config.h"
#include "peers/holder_hints.h"
#include "peers/tag_table.h"
#include "src/io/env.h"
#include "src/io/lifetime.h"
#include "src/registry/holdings.h"
#include "src/registry/writer_bridge.h"
#include "util/status.h"

namespace peering {
class Fleet;
}

namespace registry {

class FleetTags {
 public:
  FleetTags(io::Env env, const config::Config& cfg, cache::Store* store, WriterBridge* writer,
            peers::HolderHints* hints, Holdings* holdings, peering::Fleet* cluster);
  FleetTags(const FleetTags&) = delete;
  FleetTags& operator=(const FleetTags&) = delete;

  // Puts the versions kept across restarts back into the cluster's table.
  // Errors: the store's.
  util::Status Restore();
  // Whether a fleet record belongs to the own registry: its tags, its
  // replications and its nodes' sync reports. False without one.
  bool Owns(const peers::TagKey& key) const;
  // The version of `key` the fleet's table holds; null when unknown or
  // without a cluster.
  const peers::TagVersion* Find(const peers::TagKey& key) const;
  // A tag of the own registry set to `digest` (held by `holders`; empty:
  // this node) or deleted, here: recorded in the table, kept, written to
  // the store and told to its keepers in every region. `done` once, later,
  // when it is kept (errors: the store's; keepers that could not be told
  // are logged, gossip brings it to them).
  void Record(const std::string& repo, const std::string& tag, const util::Digest& digest,
              bool deleted, std::vector<std::string> holders,
              std::function<void(util::Status)> done);
  // Content of the own registry deleted (`deleted`) or pushed again
  // (false) here, by digest: recorded in the table, kept and told to the
  // record's keepers in every region, as Record does for a tag. `done`
  // once, later (errors: the store's).
  void RecordDeletion(const util::Digest& digest, bool deleted,
                      std::function<void(util::Status)> done);
  // Whether the fleet's table says `digest` was deleted (and not pushed
  // again since). False without a cluster.
  bool Deleted(const util::Digest& digest) const;
  // Keeps fleet record `u` across restarts; `done` once, later.
  void Persist(const peers::TagUpdate& u, std::function<void(util::Status)> done);
  // A tag of the own registry learned from a peer: kept, written to the
  // store (or, a tombstone, deleted from it), its holders noted, and its
  // manifest fetched from them so pulls here do not wait for it. A
  // deletion record is only kept (the OwnRegistry drops the content).
  void ApplyGossiped(const peers::TagUpdate& u);

 private:
  // Kept, then told to the record's keeper in every region (a miss of it
  // anywhere asks that keeper) before `done`; keepers that could not be
  // told are logged, gossip brings it to them.
  void KeepAndTell(const peers::TagUpdate& u, std::function<void(util::Status)> done);
  // Writes the table's current version of `key` to the store's tags.
  void SyncToStore(const peers::TagKey& key);

  io::Env env_;
  std::string name_;  // the own registry's; "" without one
  cache::Store* store_;
  WriterBridge* writer_;
  peers::HolderHints* hints_;
  Holdings* holdings_;
  peering::Fleet* cluster_;
  io::Lifetime life_;  // guards callbacks that may outlive this object
};

}  // namespace registry
