#include "peers/summary_book.h"

namespace peers {

std::vector<std::string> SummaryBook::Due(const std::string& self_region,
                                          const std::unordered_map<std::string, Member>& members,
                                          uint64_t now_ms) {
  std::vector<std::string> due;
  for (const auto& [name, m] : members) {
    if (!m.live() || m.summary_version == 0 || m.record.region != self_region) continue;
    Entry& e = entries_[name];
    if (e.fetching || e.version >= m.summary_version) continue;
    if (e.started_ms != 0 && now_ms < e.started_ms + min_interval_ms_) continue;
    e.fetching = true;
    e.started_ms = now_ms;
    due.push_back(name);
  }
  return due;
}

bool SummaryBook::Fetched(const std::string& name, uint64_t version) {
  Entry& e = entries_[name];
  e.fetching = false;
  if (version <= e.version) return false;
  e.version = version;
  return true;
}

void SummaryBook::FetchFailed(const std::string& name) { entries_[name].fetching = false; }

uint64_t SummaryBook::version(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? 0 : it->second.version;
}

}  // namespace peers
