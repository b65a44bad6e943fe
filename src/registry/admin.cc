// The admin socket's routes, served on DIR/admin.sock (mode 0600) for the
// `georeg cache` commands. JSON field names are documented in
// docs/operations.md and kept stable.
//   GET    /stats             counters and sizes
//   GET    /entries           every cached blob and manifest
//   DELETE /entries/<digest>  removes a blob or a manifest (404 if neither)
//   POST   /gc?target=BYTES   evicts least recently used blobs down to BYTES
//   GET    /peers             cluster membership as this node sees it (`georeg peers ls`)
//   DELETE /peers/<name>      revokes a member's key fleet-wide (`georeg peers remove`)
#include <nlohmann/json.hpp>

#include "src/oci/router.h"
#include "src/registry/service.h"

#include "src/http/json_response.h"
#include "src/peering/cluster.h"
#include "util/log.h"
#include "util/units.h"

namespace registry {

namespace {}  // namespace

void Service::HandleAdmin(const std::shared_ptr<http::Exchange>& ex) {
  const http::Request& req = ex->request();
  std::string path = req.target.substr(0, req.target.find('?'));
  std::string query =
      req.target.find('?') == std::string::npos ? "" : req.target.substr(req.target.find('?') + 1);

  if (req.method == "GET" && path == "/peers") {
    if (!cluster_)
      return http::RespondJson(ex, 200, {{"enabled", false}, {"members", nlohmann::json::array()}});
    nlohmann::json j = cluster_->StatusJson();
    j["stats"].update(ContentStatsJson());
    return http::RespondJson(ex, 200, j);
  }
  if (req.method == "DELETE" && path.rfind("/peers/", 0) == 0) {
    if (!cluster_)
      return http::RespondJsonError(ex, 409, "clustering is off (no [cluster] key_file)");
    std::string name = path.substr(7);
    peers::GossipNode::Learned learned;
    util::Status st = cluster_->Remove(name, &learned.withdrawn);
    if (!st.ok())
      return http::RespondJsonError(ex, st.code() == util::Code::kNotFound ? 404 : 400,
                                    st.message());
    Learn(learned);
    return http::RespondJson(ex, 200, {{"removed", name}});
  }
  if (req.method == "GET" && path == "/stats") {
    auto st = store_->Stats();
    if (!st.ok()) return http::RespondJsonError(ex, 500, st.status().ToString());
    const cache::BlobIndex& idx = keeper_->index();
    uint64_t lookups = keeper_->hits() + keeper_->misses();
    nlohmann::json j = {{"daemon", true},
                        {"bytes_used", idx.stored_bytes() + st->manifest_bytes},
                        {"blob_bytes", idx.stored_bytes()},
                        {"manifest_bytes", st->manifest_bytes},
                        {"budget", keeper_->budget()},
                        {"blobs", idx.cached_count()},
                        {"own_blobs", idx.own_count()},
                        {"own_blob_bytes", idx.own_bytes()},
                        {"manifests", st->manifests},
                        {"tags", st->tags},
                        {"hits", keeper_->hits()},
                        {"misses", keeper_->misses()},
                        {"hit_ratio", lookups ? nlohmann::json(double(keeper_->hits()) / lookups)
                                              : nlohmann::json()},
                        {"evictions", keeper_->evictions()},
                        {"corrupt_blobs", keeper_->corruptions()},
                        {"fills_in_flight", parts_.fills.running()},
                        {"bytes_in_flight", in_flight_->held()},
                        {"refused_busy", in_flight_->refused()},
                        {"data_file_bytes", st->data_file_bytes},
                        {"map_size", st->map_size}};
    return http::RespondJson(ex, 200, j);
  }
  if (req.method == "GET" && path == "/entries") {
    auto blobs = store_->ListBlobInfos();
    auto manifests = store_->ListManifests();
    if (!blobs.ok() || !manifests.ok())
      return http::RespondJsonError(ex, 500, "cannot list the cache");
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [d, info] : *blobs) {
      if (!keeper_->Has(d)) continue;  // being evicted
      const cache::BlobIndex::Entry* e = keeper_->index().Find(d);
      out.push_back({{"digest", d.ToString()},
                     {"kind", "blob"},
                     {"size", info.size},
                     {"last_access_ms", e ? e->last_access_ms : info.last_access_ms}});
    }
    for (const auto& m : *manifests) {
      out.push_back({{"digest", m.digest.ToString()},
                     {"kind", "manifest"},
                     {"size", m.size},
                     {"media_type", m.media_type},
                     {"last_access_ms", nullptr}});
    }
    return http::RespondJson(ex, 200, out);
  }
  if (req.method == "DELETE" && path.rfind("/entries/", 0) == 0) {
    auto d = util::Digest::Parse(path.substr(9));
    if (!d.ok()) return http::RespondJsonError(ex, 400, d.status().message());
    if (keeper_->Has(*d)) {
      keeper_->Remove(*d, "removed by operator");
      return http::RespondJson(ex, 200, {{"digest", d->ToString()}, {"removed", "blob"}});
    }
    auto txn = store_->BeginRead();
    cache::Manifest m;
    if (txn.ok() && store_->GetManifest(*txn, *d, &m).ok()) {
      cache::Store* store = store_;
      util::Digest digest = *d;
      writer_->Run(
          [store, digest] { return store->DeleteManifest(digest); },
          [ex, digest](util::Status st) {
            if (!st.ok()) return http::RespondJsonError(ex, 500, st.ToString());
            LOG_INFO("cache: removed by operator: manifest %s", digest.ToString().c_str());
            http::RespondJson(ex, 200, {{"digest", digest.ToString()}, {"removed", "manifest"}});
          });
      return;
    }
    return http::RespondJsonError(ex, 404, d->ToString() + " is not in the cache");
  }
  if (req.method == "POST" && path == "/gc") {
    std::string target;
    if (query.rfind("target=", 0) == 0) target = query.substr(7);
    auto bytes = util::ParseSize(target);
    if (!bytes.ok()) return http::RespondJsonError(ex, 400, "target: " + bytes.status().message());
    size_t n = keeper_->EvictTo(*bytes);
    return http::RespondJson(ex, 200,
                             {{"evicted", n}, {"bytes_used", keeper_->index().stored_bytes()}});
  }
  http::RespondJsonError(ex, 404, "no such admin route");
}

}  // namespace registry
