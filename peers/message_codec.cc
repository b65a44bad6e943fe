#include "peers/message_codec.h"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace peers {

using nlohmann::json;
using util::Status;

namespace {
json TagJson(const TagUpdate& t);

std::string Hex16(uint64_t v) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(v));
  return hex;
}

// A bucket summary list ("summaries", "ms"): 16 hex digits each.
bool ParseSummaries(const json& arr, std::vector<uint64_t>* out) {
  for (const json& s : arr) {
    if (!s.is_string() || s.get_ref<const std::string&>().size() != 16) return false;
    const std::string& hex = s.get_ref<const std::string&>();
    char* end = nullptr;
    uint64_t v = std::strtoull(hex.c_str(), &end, 16);
    if (end != hex.c_str() + 16) return false;
    out->push_back(v);
  }
  return true;
}
}  // namespace

std::string EncodeMessage(const Message& m) {
  json j;
  j["pv"] = m.protocol;
  j["type"] = MessageTypeName(m.type);
  j["from"] = m.from;
  j["seq"] = m.seq;
  j["target"] = m.target;
  j["sv"] = m.summary_version;
  json members = json::array();
  for (const auto& r : m.members) {
    members.push_back({{"name", r.name},
                       {"region", r.region},
                       {"url", r.url},
                       {"state", MemberStateName(r.state)},
                       {"inc", r.incarnation},
                       {"key", r.public_key},
                       {"sig", r.signature}});
  }
  j["members"] = std::move(members);
  json tags = json::array();
  for (const auto& t : m.tags) tags.push_back(TagJson(t));
  j["tags"] = std::move(tags);
  json revocations = json::array();
  for (const auto& r : m.revocations)
    revocations.push_back(
        {{"name", r.name}, {"key", r.public_key}, {"by", r.by}, {"sig", r.signature}});
  j["revocations"] = std::move(revocations);
  json sums = json::array();
  for (uint64_t s : m.tag_summaries) sums.push_back(Hex16(s));
  j["summaries"] = std::move(sums);
  if (!m.member_summaries.empty()) {
    json ms = json::array();
    for (uint64_t v : m.member_summaries) ms.push_back(Hex16(v));
    j["ms"] = std::move(ms);
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

// Typed field readers: a missing or mistyped field is an error, never an exception.
bool GetStr(const json& o, const char* key, std::string* out) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_string()) return false;
  *out = it->get_ref<const std::string&>();
  return true;
}

bool GetU64(const json& o, const char* key, uint64_t* out) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_number_unsigned()) return false;
  *out = it->get<uint64_t>();
  return true;
}

bool GetArray(const json& o, const char* key, const json** out) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_array()) return false;
  *out = &*it;
  return true;
}

json TagJson(const TagUpdate& t) {
  json j = {{"registry", t.key.registry},
            {"repository", t.key.repository},
            {"tag", t.key.tag},
            {"digest", t.version.digest.ToString()},
            {"wall", t.version.hlc.wall_ms},
            {"logical", t.version.hlc.logical},
            {"origin", t.version.origin},
            {"sig", t.version.signature}};
  if (!t.version.value.empty()) j["value"] = t.version.value;
  return j;
}

util::Result<TagUpdate> TagFromJson(const json& o) {
  TagUpdate u;
  std::string digest;
  uint64_t logical = 0;
  if (!o.is_object() || !GetStr(o, "registry", &u.key.registry) ||
      !GetStr(o, "repository", &u.key.repository) || !GetStr(o, "tag", &u.key.tag) ||
      !GetStr(o, "digest", &digest) || !GetU64(o, "wall", &u.version.hlc.wall_ms) ||
      !GetU64(o, "logical", &logical) || logical > UINT32_MAX ||
      !GetStr(o, "origin", &u.version.origin) || !GetStr(o, "sig", &u.version.signature))
    return Status::InvalidArgument("bad tag update");
  if (o.contains("value") &&
      (!GetStr(o, "value", &u.version.value) || u.version.value.size() > kMaxTagValueBytes))
    return Status::InvalidArgument("bad tag value");
  auto d = util::Digest::Parse(digest);
  if (!d.ok()) return Status::InvalidArgument("bad tag digest");
  u.version.digest = *d;
  u.version.hlc.logical = static_cast<uint32_t>(logical);
  return u;
}

}  // namespace

util::Result<Message> DecodeMessage(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::InvalidArgument("message is not a JSON object");
  Message m;
  // Before versions were named there was none: version 1. Whether this
  // node speaks it is the receiver's to say (and count).
  m.protocol = 1;
  if (j.contains("pv") && !GetU64(j, "pv", &m.protocol)) return Status::InvalidArgument("bad pv");
  std::string type;
  if (!GetStr(j, "type", &type) || !ParseMessageType(type, &m.type))
    return Status::InvalidArgument("bad type");
  if (!GetStr(j, "from", &m.from) || m.from.empty()) return Status::InvalidArgument("bad from");
  if (!GetU64(j, "seq", &m.seq)) return Status::InvalidArgument("bad seq");
  if (!GetStr(j, "target", &m.target)) return Status::InvalidArgument("bad target");
  if (!GetU64(j, "sv", &m.summary_version)) return Status::InvalidArgument("bad sv");
  const json* arr = nullptr;
  if (!GetArray(j, "members", &arr)) return Status::InvalidArgument("bad members");
  for (const json& o : *arr) {
    MemberRecord r;
    std::string state;
    if (!o.is_object() || !GetStr(o, "name", &r.name) || !GetStr(o, "region", &r.region) ||
        !GetStr(o, "url", &r.url) || !GetStr(o, "state", &state) ||
        !ParseMemberState(state, &r.state) || !GetU64(o, "inc", &r.incarnation) ||
        !GetStr(o, "key", &r.public_key) || !GetStr(o, "sig", &r.signature))
      return Status::InvalidArgument("bad member record");
    m.members.push_back(std::move(r));
  }
  if (!GetArray(j, "tags", &arr)) return Status::InvalidArgument("bad tags");
  for (const json& o : *arr) {
    auto u = TagFromJson(o);
    if (!u.ok()) return u.status();
    m.tags.push_back(std::move(*u));
  }
  if (!GetArray(j, "revocations", &arr)) return Status::InvalidArgument("bad revocations");
  for (const json& o : *arr) {
    Revocation r;
    if (!o.is_object() || !GetStr(o, "name", &r.name) || !GetStr(o, "key", &r.public_key) ||
        !GetStr(o, "by", &r.by) || !GetStr(o, "sig", &r.signature))
      return Status::InvalidArgument("bad revocation");
    m.revocations.push_back(std::move(r));
  }
  if (!GetArray(j, "summaries", &arr) || !ParseSummaries(*arr, &m.tag_summaries))
    return Status::InvalidArgument("bad summaries");
  // Optional: an earlier release sends the whole membership instead.
  if (j.contains("ms") && (!GetArray(j, "ms", &arr) || arr->size() != kMemberBuckets ||
                           !ParseSummaries(*arr, &m.member_summaries)))
    return Status::InvalidArgument("bad member summaries");
  return m;
}

std::string EncodeTagUpdate(const TagUpdate& u) {
  json j = TagJson(u);
  j["pv"] = kProtocolVersion;
  return j.dump();
}

util::Result<TagUpdate> DecodeTagUpdate(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("tag update is not JSON");
  uint64_t pv = 1;  // kept before versions were named
  if (j.is_object() && j.contains("pv") && !GetU64(j, "pv", &pv))
    return Status::InvalidArgument("bad pv");
  if (!SpeaksProtocol(pv)) return Status::InvalidArgument("tag update of " + ProtocolMismatch(pv));
  return TagFromJson(j);
}

}  // namespace peers
