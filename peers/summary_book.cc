#include "peers/summary_book.h"

namespace peers {

std::vector<std::string> SummaryBook::Due(const std::string& self_region,
                                          const std::unordered_map<std::string, Member>& members,
                                          uint64_t now_ms) {
  std::set<std::string> all;
  for (const auto& [name, m] : members) all.insert(name);
  return DueAmong(self_region, members, &all, now_ms);
}

std::vector<std::string> SummaryBook::DueAmong(
    const std::string& self_region, const std::unordered_map<std::string, Member>& members,
    std::set<std::string>* watch, uint64_t now_ms) {
  std::vector<std::string> due;
  for (auto it = watch->begin(); it != watch->end();) {
    auto mit = members.find(*it);
    const Member* m = mit == members.end() ? nullptr : &mit->second;
    if (!m || !m->live() || m->summary_version == 0 || m->record.region != self_region) {
      it = watch->erase(it);
      continue;
    }
    Entry& e = entries_[*it];
    if (!e.fetching && e.version >= m->summary_version) {
      it = watch->erase(it);
      continue;
    }
    if (!e.fetching && (e.started_ms == 0 || now_ms >= e.started_ms + min_interval_ms_)) {
      e.fetching = true;
      e.started_ms = now_ms;
      due.push_back(*it);
    }
    ++it;  // watched until fetched: a newer version may have come meanwhile
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
