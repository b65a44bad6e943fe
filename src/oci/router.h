// Router: maps a request's method and target to an OCI pull-API route.
//
// Pure: no I/O. The router validates names, tags and digests, and decodes the
// `ns` query parameter, so that handlers only ever see checked values.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/digest.h"

namespace oci {

enum class RouteKind {
  kBase,          // GET /v2/
  kManifest,      // GET|HEAD /v2/<name>/manifests/<reference>
  kBlob,          // GET|HEAD /v2/<name>/blobs/<digest>
  kHealth,        // GET /healthz
  kError,         // answer with `error` below
};

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
  kUnsupported,      // 405 (push methods), 404 for unknown routes, 416 for a range we cannot satisfy
  kUnavailable,      // 503: upstream unreachable or too slow
  kUnknown,          // 502: upstream sent something unusable
};

const char* ErrorCodeName(ErrorCode code);

struct Route {
  RouteKind kind = RouteKind::kError;
  std::string name;                      // repository, validated
  std::string tag;                       // manifests by tag: the tag, validated
  std::optional<util::Digest> digest;    // blobs, and manifests by digest
  std::optional<std::string> ns;         // decoded ?ns= value, if present
  // For kError:
  ErrorCode error = ErrorCode::kUnsupported;
  int status = 404;
  std::string message;
};

Route RouteRequest(std::string_view method, std::string_view target);

// Decodes %XX escapes; returns false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out);

}  // namespace oci
