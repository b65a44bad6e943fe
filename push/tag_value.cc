#include "push/tag_value.h"

#include <nlohmann/json.hpp>

namespace push {

constexpr size_t kMaxHolders = 16;

std::string EncodeTagValue(const OwnTagValue& v) {
  nlohmann::json j = nlohmann::json::object();
  if (v.deleted) j["deleted"] = true;
  if (!v.holders.empty()) j["holders"] = v.holders;
  return j.dump();
}

OwnTagValue ParseTagValue(const std::string& text) {
  OwnTagValue v;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return v;
  if (auto d = j.find("deleted"); d != j.end() && d->is_boolean()) v.deleted = d->get<bool>();
  if (auto h = j.find("holders"); h != j.end() && h->is_array()) {
    for (const auto& n : *h) {
      if (v.holders.size() >= kMaxHolders) break;
      if (n.is_string() && !n.get<std::string>().empty() && n.get<std::string>().size() <= 64)
        v.holders.push_back(n.get<std::string>());
    }
  }
  return v;
}

}  // namespace push
