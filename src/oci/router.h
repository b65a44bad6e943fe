// Router: maps a request's method and target to an OCI distribution route:
// pull, push (uploads, manifest PUT), content discovery (tags/list,
// referrers) and deletes.
//
// Pure: no I/O. The router validates names, tags, digests, upload ids and
// the query parameters it knows (ns, digest, mount, from, n, last,
// artifactType), so that handlers only ever see checked values. Whether a
// push is allowed is not its business: the service refuses pushes to
// mirrored namespaces.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "util/digest.h"

namespace oci {

enum class RouteKind {
  kBase,            // GET /v2/
  kManifest,        // GET|HEAD /v2/<name>/manifests/<reference>
  kBlob,            // GET|HEAD /v2/<name>/blobs/<digest>
  kManifestPut,     // PUT /v2/<name>/manifests/<reference>
  kManifestDelete,  // DELETE /v2/<name>/manifests/<reference>
  kBlobDelete,      // DELETE /v2/<name>/blobs/<digest>
  kUploadStart,     // POST /v2/<name>/blobs/uploads/ [?digest= | ?mount=&from=]
  kUploadStatus,    // GET /v2/<name>/blobs/uploads/<id>
  kUploadPatch,     // PATCH /v2/<name>/blobs/uploads/<id>
  kUploadPut,       // PUT /v2/<name>/blobs/uploads/<id>?digest=
  kUploadCancel,    // DELETE /v2/<name>/blobs/uploads/<id>
  kTagsList,        // GET /v2/<name>/tags/list [?n=&last=]
  kReferrers,       // GET /v2/<name>/referrers/<digest> [?artifactType=]
  kHealth,          // GET /healthz
  kError,           // answer with `error` below
};

// Whether a route changes the registry (refused for mirrored namespaces).
bool IsWrite(RouteKind kind);
// The request kind the access log and the metrics name a route by: "base",
// "manifest", "blob", "push" (every write), "tags", "referrers", "health"
// or "other" (a route error).
std::string_view KindLabel(RouteKind kind);

// Error codes, with the HTTP status each is sent with: the OCI distribution
// spec's, plus UNAVAILABLE and UNKNOWN, which CNCF Distribution sends too.
// A manifest reference that is neither a valid tag nor a digest names no
// manifest: 404 MANIFEST_UNKNOWN (the conformance suite's expectation).
enum class ErrorCode {
  kNameInvalid,      // 400
  kNameUnknown,      // 404
  kDigestInvalid,    // 400
  kManifestUnknown,  // 404
  kBlobUnknown,      // 404
  kUnsupported,  // 405 (push methods), 404 for unknown routes, 416 for a range we cannot satisfy
  kUnavailable,  // 503: upstream unreachable or too slow
  kUnknown,      // 502: upstream sent something unusable
  kBlobUploadUnknown,        // 404
  kBlobUploadInvalid,        // 400 (416 for a chunk out of order)
  kManifestInvalid,          // 400
  kManifestBlobUnknown,      // 400
  kSizeInvalid,              // 400
  kUnauthorized,             // 401
  kDenied,                   // 403
  kTooManyRequests,          // 429
  kPaginationNumberInvalid,  // 400 (Distribution's code for a bad n=)
};

const char* ErrorCodeName(ErrorCode code);

struct Route {
  RouteKind kind = RouteKind::kError;
  std::string name;                          // repository, validated
  std::string tag;                           // manifests by tag: the tag, validated
  std::optional<util::Digest> digest;        // blobs, and manifests by digest
  std::optional<std::string> ns;             // decoded ?ns= value, if present
  std::string upload_id;                     // upload routes but kUploadStart: [A-Za-z0-9_-]{1,128}
  std::optional<util::Digest> query_digest;  // ?digest= (upload PUT, monolithic POST)
  std::optional<util::Digest> mount;         // ?mount= (kUploadStart)
  std::string from;                          // ?from= (kUploadStart), validated when present
  std::optional<uint64_t> n;                 // ?n= (kTagsList)
  std::string last;                          // ?last= (kTagsList), a valid tag when present
  std::string artifact_type;                 // ?artifactType= (kReferrers)
  bool ns_from_path = false;  // ns came from a path prefix (/v2/quay.io/...), not ?ns=
  // For kError:
  ErrorCode error = ErrorCode::kUnsupported;
  int status = 404;
  std::string message;
};

// `registry_for`, when given, names the registries a path may start with:
// without ?ns=, a first path component that looks like a host (a '.', a
// ':', a '_' or "localhost") for which it returns a registry is taken as
// ns= (the registry it returned) and left out of the name. That is how
// runtimes that send no ns= reach every upstream: a mirror location
// "127.0.0.1:5000/quay.io" makes them ask for /v2/quay.io/<name>/...
// (podman, CRI-O, buildah). A registry with a port is written with '_' for
// ':' there ("127.0.0.1:5000/localhost_5001"; util::RegistryPathComponent):
// a reference path cannot hold a ':'.
using RegistryLookup = std::function<std::optional<std::string>(std::string_view component)>;
Route RouteRequest(std::string_view method, std::string_view target,
                   const RegistryLookup& registry_for = {});

// Decodes %XX escapes; returns false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out);

}  // namespace oci
