// SummaryBook: which peers' digest summaries this node holds, and which to
// fetch now (docs/gossip.md, "Who has what"). Pure: time is passed in.
//
// Only members of our own region are followed. Other regions' content is
// located through each digest's fleet owner (peers/routing.h), so what
// content location costs a node grows with its region, not with the fleet:
// no n² summary traffic. A member's summary is fetched when it announces a
// newer version than the one held, and at most once per `min_interval_ms`,
// however often its cache changes.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "peers/membership.h"

namespace peers {

class SummaryBook {
 public:
  explicit SummaryBook(uint64_t min_interval_ms) : min_interval_ms_(min_interval_ms) {}

  // The members whose summary to fetch now; each is marked as being
  // fetched until Fetched() or FetchFailed().
  std::vector<std::string> Due(const std::string& self_region,
                               const std::unordered_map<std::string, Member>& members,
                               uint64_t now_ms);
  // The same, looking only at the members named in `*watch` (those that
  // changed; GossipNode::TakeChangedMembers). A name stays in `*watch`
  // while it may still become due (being fetched, or fetched too recently
  // for a newer version); the others leave it.
  std::vector<std::string> DueAmong(const std::string& self_region,
                                    const std::unordered_map<std::string, Member>& members,
                                    std::set<std::string>* watch, uint64_t now_ms);
  // A fetch ended with this version (kept if newer than the one held).
  // Returns whether the caller should take the new filter.
  bool Fetched(const std::string& name, uint64_t version);
  void FetchFailed(const std::string& name);
  // The member is gone (revoked): forget it.
  void Forget(const std::string& name) { entries_.erase(name); }
  uint64_t version(const std::string& name) const;

 private:
  struct Entry {
    uint64_t version = 0;
    uint64_t started_ms = 0;
    bool fetching = false;
  };
  uint64_t min_interval_ms_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace peers
