#include "src/cache_cli.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "cache/blob_index.h"
#include "cache/dir_lock.h"
#include "cache/store.h"
#include "util/digest.h"
#include "util/sha256.h"
#include "util/units.h"

namespace cache_cli {
namespace {

using nlohmann::json;

constexpr int kOk = 0, kCorrupt = 1, kUsage = 2, kUnreachable = 3, kNotFound = 4;

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "georeg: %s\n", msg.c_str());
  return code;
}

bool WantJson(const Options& o) {
  return o.output == "json" || (o.output.empty() && !isatty(STDOUT_FILENO));
}

struct Reply {
  int status = 0;
  json body;
};

// One request to the daemon's admin socket. nullopt: no daemon listens there.
std::optional<Reply> Admin(const Options& o, const std::string& method, const std::string& path,
                           std::string* err) {
  std::string sock_path = o.dir + "/admin.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    *err = "cannot talk to the daemon at " + sock_path;
    return Reply{-1, {}};
  }
  std::string resp;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) resp.append(buf, n);
  ::close(fd);
  size_t head_end = resp.find("\r\n\r\n");
  if (resp.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos) {
    *err = "bad answer from the daemon at " + sock_path;
    return Reply{-1, {}};
  }
  Reply r;
  r.status = std::atoi(resp.c_str() + 9);
  r.body = json::parse(resp.substr(head_end + 4), nullptr, false);
  return r;
}

// The cache opened directly: only when no daemon runs (we hold its lock).
struct Offline {
  std::optional<cache::DirLock> lock;
  std::unique_ptr<cache::Store> store;
};

int OpenOffline(const Options& o, Offline* off) {
  auto lock = cache::DirLock::Acquire(o.dir);
  if (!lock.ok())
    return Fail(kUnreachable, lock.status().message() + ", but its admin socket does not answer");
  off->lock.emplace(std::move(*lock));
  auto probe = cache::Store::Open({o.dir, 0, 0, 1024, /*read_only=*/true});
  if (!probe.ok()) return Fail(kUnreachable, probe.status().message());
  probe->reset();
  auto store = cache::Store::Open({o.dir, 64ull << 20});
  if (!store.ok()) return Fail(kUnreachable, store.status().message());
  off->store = std::move(*store);
  return kOk;
}

std::string FormatTime(const json& ms) {
  if (!ms.is_number()) return "-";
  time_t t = ms.get<uint64_t>() / 1000;
  tm utc;
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

json EntriesOffline(cache::Store* store) {
  json out = json::array();
  auto blobs = store->ListBlobInfos();
  if (blobs.ok()) {
    for (const auto& [d, info] : *blobs)
      out.push_back({{"digest", d.ToString()},
                     {"kind", "blob"},
                     {"size", info.size},
                     {"last_access_ms", info.last_access_ms}});
  }
  auto manifests = store->ListManifests();
  if (manifests.ok()) {
    for (const auto& m : *manifests)
      out.push_back({{"digest", m.digest.ToString()},
                     {"kind", "manifest"},
                     {"size", m.size},
                     {"media_type", m.media_type},
                     {"last_access_ms", nullptr}});
  }
  return out;
}

}  // namespace

int Ls(const Options& o) {
  std::string err;
  json entries;
  if (auto r = Admin(o, "GET", "/entries", &err)) {
    if (r->status != 200)
      return Fail(kUnreachable, err.empty() ? "the daemon refused the listing" : err);
    entries = r->body;
  } else {
    Offline off;
    if (int rc = OpenOffline(o, &off)) return rc;
    entries = EntriesOffline(off.store.get());
  }
  if (WantJson(o)) {
    std::printf("%s\n", entries.dump(2).c_str());
    return kOk;
  }
  std::printf("%-71s  %-8s  %12s  %s\n", "DIGEST", "KIND", "SIZE", "LAST ACCESS");
  for (const json& e : entries) {
    std::printf("%-71s  %-8s  %12llu  %s\n", e["digest"].get<std::string>().c_str(),
                e["kind"].get<std::string>().c_str(), (unsigned long long)e["size"].get<uint64_t>(),
                FormatTime(e["last_access_ms"]).c_str());
  }
  return kOk;
}

int PeersLs(const Options& o) {
  std::string err;
  auto r = Admin(o, "GET", "/peers", &err);
  if (!r)
    return Fail(kUnreachable,
                err.empty() ? "the daemon is not running (no admin socket in " + o.dir + ")" : err);
  if (r->status != 200) return Fail(kUnreachable, "the daemon refused the listing");
  if (WantJson(o)) {
    std::printf("%s\n", r->body.dump(2).c_str());
    return kOk;
  }
  if (!r->body.value("enabled", false)) {
    std::printf("clustering is off (no [cluster] key_file)\n");
    return kOk;
  }
  std::printf("%-20s  %-16s  %-9s  %8s  %-28s  %s\n", "NAME", "REGION", "STATE", "RTT", "URL",
              "NOTE");
  for (const json& m : r->body["members"]) {
    char rtt[32] = "-";
    if (m["rtt_ms"].is_number())
      std::snprintf(rtt, sizeof rtt, "%.1fms", m["rtt_ms"].get<double>());
    std::string note = m.value("self", false)          ? "this node"
                       : m.value("quarantined", false) ? "quarantined"
                                                       : "";
    std::printf("%-20s  %-16s  %-9s  %8s  %-28s  %s\n", m["name"].get<std::string>().c_str(),
                m["region"].get<std::string>().c_str(), m["state"].get<std::string>().c_str(), rtt,
                m["url"].get<std::string>().c_str(), note.c_str());
  }
  return kOk;
}

int PeersRemove(const Options& o, const std::string& name) {
  if (name.empty() || name.find_first_of("/?#% ") != std::string::npos)
    return Fail(kUsage, "'" + name + "' is not a node name");
  std::string err;
  auto r = Admin(o, "DELETE", "/peers/" + name, &err);
  if (!r)
    return Fail(kUnreachable,
                err.empty() ? "the daemon is not running (no admin socket in " + o.dir + ")" : err);
  std::string why = r->body.is_object() ? r->body.value("error", "") : "";
  if (r->status == 404)
    return Fail(kNotFound, why.empty() ? "no member named '" + name + "'" : why);
  if (r->status != 200)
    return Fail(r->status == 400 ? kUsage : kUnreachable, why.empty() ? "the daemon refused" : why);
  if (WantJson(o)) {
    std::printf("%s\n", r->body.dump().c_str());
  } else {
    std::printf("removed %s: its key is revoked on every node, and the tags it set are withdrawn\n",
                name.c_str());
  }
  return kOk;
}

int Stats(const Options& o) {
  std::string err;
  json stats;
  if (auto r = Admin(o, "GET", "/stats", &err)) {
    if (r->status != 200)
      return Fail(kUnreachable, err.empty() ? "the daemon refused the stats" : err);
    stats = r->body;
  } else {
    Offline off;
    if (int rc = OpenOffline(o, &off)) return rc;
    auto st = off.store->Stats();
    if (!st.ok()) return Fail(kUnreachable, st.status().ToString());
    stats = {{"daemon", false},
             {"bytes_used", st->blob_bytes + st->manifest_bytes},
             {"blob_bytes", st->blob_bytes},
             {"manifest_bytes", st->manifest_bytes},
             {"budget", nullptr},
             {"blobs", st->blobs},
             {"own_blobs", st->own_blobs},
             {"own_blob_bytes", st->own_blob_bytes},
             {"manifests", st->manifests},
             {"tags", st->tags},
             {"hits", nullptr},
             {"misses", nullptr},
             {"hit_ratio", nullptr},
             {"evictions", nullptr},
             {"corrupt_blobs", nullptr},
             {"fills_in_flight", 0},
             {"data_file_bytes", st->data_file_bytes},
             {"map_size", st->map_size}};
  }
  if (WantJson(o)) {
    std::printf("%s\n", stats.dump(2).c_str());
    return kOk;
  }
  for (auto& [k, v] : stats.items()) {
    std::string value = v.is_null() ? "-" : v.dump();
    if (v.is_number_unsigned() &&
        (k.find("bytes") != std::string::npos || k == "budget" || k == "map_size"))
      value = util::FormatSize(v.get<uint64_t>()) + " (" + v.dump() + ")";
    std::printf("%-16s %s\n", k.c_str(), value.c_str());
  }
  return kOk;
}

namespace {

// Removes one entry through the daemon or directly; sets *result. No output
// but error lines.
int RemoveEntry(const Options& o, const util::Digest* d, json* result) {
  std::string err;
  if (auto r = Admin(o, "DELETE", "/entries/" + d->ToString(), &err)) {
    if (r->status == 404) return Fail(kNotFound, d->ToString() + " is not in the cache");
    if (r->status != 200)
      return Fail(kUnreachable, err.empty() ? "the daemon refused the removal" : err);
    *result = r->body;
    return kOk;
  }
  {
    Offline off;
    if (int rc = OpenOffline(o, &off)) return rc;
    auto txn = off.store->BeginRead();
    cache::BlobInfo info;
    cache::Manifest m;
    bool blob = txn.ok() && off.store->GetBlob(*txn, *d, &info).ok();
    bool manifest = !blob && txn.ok() && off.store->GetManifest(*txn, *d, &m).ok();
    *txn = cache::ReadTxn();
    if (!blob && !manifest) return Fail(kNotFound, d->ToString() + " is not in the cache");
    util::Status st = blob ? off.store->DeleteBlob(*d) : off.store->DeleteManifest(*d);
    if (!st.ok()) return Fail(kUnreachable, st.ToString());
    *result = {{"digest", d->ToString()}, {"removed", blob ? "blob" : "manifest"}};
  }
  return kOk;
}

}  // namespace

int Rm(const Options& o, const std::string& digest_text) {
  auto d = util::Digest::Parse(digest_text);
  if (!d.ok()) return Fail(kUsage, "'" + digest_text + "': " + d.status().message());
  json result;
  if (int rc = RemoveEntry(o, &*d, &result)) return rc;
  if (WantJson(o)) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    std::printf("removed %s %s\n", result["removed"].get<std::string>().c_str(),
                d->ToString().c_str());
  }
  return kOk;
}

int Gc(const Options& o, const std::string& target_text) {
  auto target = util::ParseSize(target_text);
  if (!target.ok()) return Fail(kUsage, "target " + target.status().message());
  std::string err;
  json result;
  if (auto r = Admin(o, "POST", "/gc?target=" + std::to_string(*target), &err)) {
    if (r->status != 200)
      return Fail(kUnreachable, err.empty() ? "the daemon refused the gc" : err);
    result = r->body;
  } else {
    Offline off;
    if (int rc = OpenOffline(o, &off)) return rc;
    auto blobs = off.store->ListBlobInfos();
    if (!blobs.ok()) return Fail(kUnreachable, blobs.status().ToString());
    cache::BlobIndex idx;
    for (const auto& [d, info] : *blobs) idx.Add(d, info.size, info.last_access_ms);
    size_t n = 0;
    if (idx.stored_bytes() > *target) {
      for (const util::Digest& d : idx.ChooseEvictions(idx.stored_bytes() - *target)) {
        if (!off.store->DeleteBlob(d).ok()) continue;
        idx.Remove(d);
        ++n;
      }
    }
    result = {{"evicted", n}, {"bytes_used", idx.stored_bytes()}};
  }
  if (WantJson(o)) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    std::printf("evicted %llu blob(s); blobs now use %s\n",
                (unsigned long long)result["evicted"].get<uint64_t>(),
                util::FormatSize(result["bytes_used"].get<uint64_t>()).c_str());
  }
  return kOk;
}

int Verify(const Options& o) {
  // Read-only, so it runs beside a daemon; removal goes through whoever may write.
  auto store = cache::Store::Open({o.dir, 0, 0, 1024, /*read_only=*/true});
  if (!store.ok()) return Fail(kUnreachable, store.status().message());
  auto blobs = (*store)->ListBlobInfos();
  if (!blobs.ok()) return Fail(kUnreachable, blobs.status().ToString());
  json corrupt = json::array();
  uint64_t bytes = 0;
  for (const auto& [d, info] : *blobs) {
    auto txn = (*store)->BeginRead();
    if (!txn.ok()) return Fail(kUnreachable, txn.status().ToString());
    util::Sha256 h;
    uint64_t seen = 0;
    std::string problem;
    for (uint32_t i = 0; i < info.ChunkCount(); ++i) {
      std::span<const uint8_t> p;
      util::Status st = (*store)->GetChunk(*txn, info.ChunksOf(d), i, &p, cache::ChunkCheck::kFull);
      if (!st.ok()) {
        problem = st.message();
        break;
      }
      h.Update(p.data(), p.size());
      seen += p.size();
    }
    bytes += seen;
    if (problem.empty() && seen != info.size)
      problem = "size " + std::to_string(seen) + " != " + std::to_string(info.size);
    if (problem.empty() && util::Digest::FromRaw(h.Finish().data()) != d)
      problem = "sha256 does not match";
    if (!problem.empty()) corrupt.push_back({{"digest", d.ToString()}, {"problem", problem}});
  }
  store->reset();
  json removed = json::array();
  for (const json& c : corrupt) {
    auto d = util::Digest::Parse(c["digest"].get<std::string>());
    json ignored;
    if (d.ok() && RemoveEntry(o, &*d, &ignored) == kOk) removed.push_back(c["digest"]);
  }
  json result = {
      {"checked", blobs->size()}, {"bytes", bytes}, {"corrupt", corrupt}, {"removed", removed}};
  if (WantJson(o)) {
    std::printf("%s\n", result.dump(2).c_str());
  } else {
    std::printf("checked %zu blob(s), %s: %zu corrupt, %zu removed\n", blobs->size(),
                util::FormatSize(bytes).c_str(), corrupt.size(), removed.size());
    for (const json& c : corrupt)
      std::printf("corrupt %s: %s\n", c["digest"].get<std::string>().c_str(),
                  c["problem"].get<std::string>().c_str());
  }
  return corrupt.empty() ? kOk : kCorrupt;
}

}  // namespace cache_cli
