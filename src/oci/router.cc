#include "src/oci/router.h"

#include <vector>

#include "src/oci/reference.h"

namespace oci {
namespace {

Route Error(ErrorCode code, int status, std::string message) {
  Route r;
  r.kind = RouteKind::kError;
  r.error = code;
  r.status = status;
  r.message = std::move(message);
  return r;
}

bool ValidUploadId(std::string_view id) {
  return !id.empty() && id.size() <= 128 &&
         id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
             std::string_view::npos;
}

Route MethodNotAllowed() { return Error(ErrorCode::kUnsupported, 405, "method not allowed"); }

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Parses the query parameters into `r`; an error route when one is malformed.
std::optional<Route> ParseQuery(std::string_view query, Route* r) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = kv.find('=');
    std::string_view key = kv.substr(0, eq);
    std::string value;
    if (eq == std::string_view::npos || !PercentDecode(kv.substr(eq + 1), &value)) {
      if (key == "ns") return Error(ErrorCode::kNameUnknown, 404, "malformed ns parameter");
      continue;  // other malformed parameters are ignored, as unknown ones are
    }
    if (key == "ns") {
      if (value.empty()) return Error(ErrorCode::kNameUnknown, 404, "malformed ns parameter");
      r->ns = std::move(value);
    } else if (key == "digest" || key == "mount") {
      auto d = util::Digest::Parse(value);
      if (!d.ok())
        return Error(ErrorCode::kDigestInvalid, 400,
                     key == "digest" ? d.status().message() : "mount: " + d.status().message());
      (key == "digest" ? r->query_digest : r->mount) = *d;
    } else if (key == "from") {
      if (!ValidRepositoryName(value))
        return Error(ErrorCode::kNameInvalid, 400, "invalid repository name in from=");
      r->from = std::move(value);
    } else if (key == "n") {
      if (value.empty() || value.size() > 9 ||
          value.find_first_not_of("0123456789") != std::string::npos)
        return Error(ErrorCode::kPaginationNumberInvalid, 400,
                     "n must be a number below 1000000000");
      r->n = std::stoull(value);
    } else if (key == "last") {
      if (!value.empty() && !ValidTag(value))
        return Error(ErrorCode::kUnsupported, 400, "last must be a tag");
      r->last = std::move(value);
    } else if (key == "artifactType") {
      if (value.size() > 255) return Error(ErrorCode::kUnsupported, 400, "artifactType too long");
      r->artifact_type = std::move(value);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view KindLabel(RouteKind kind) {
  if (IsWrite(kind)) return "push";
  switch (kind) {
    case RouteKind::kBase:
      return "base";
    case RouteKind::kManifest:
      return "manifest";
    case RouteKind::kBlob:
      return "blob";
    case RouteKind::kTagsList:
      return "tags";
    case RouteKind::kReferrers:
      return "referrers";
    case RouteKind::kHealth:
      return "health";
    default:
      return "other";
  }
}

bool IsWrite(RouteKind kind) {
  switch (kind) {
    case RouteKind::kManifestPut:
    case RouteKind::kManifestDelete:
    case RouteKind::kBlobDelete:
    case RouteKind::kUploadStart:
    case RouteKind::kUploadStatus:
    case RouteKind::kUploadPatch:
    case RouteKind::kUploadPut:
    case RouteKind::kUploadCancel:
      return true;
    default:
      return false;
  }
}

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNameInvalid:
      return "NAME_INVALID";
    case ErrorCode::kNameUnknown:
      return "NAME_UNKNOWN";
    case ErrorCode::kDigestInvalid:
      return "DIGEST_INVALID";
    case ErrorCode::kManifestUnknown:
      return "MANIFEST_UNKNOWN";
    case ErrorCode::kBlobUnknown:
      return "BLOB_UNKNOWN";
    case ErrorCode::kUnsupported:
      return "UNSUPPORTED";
    case ErrorCode::kUnavailable:
      return "UNAVAILABLE";
    case ErrorCode::kUnknown:
      return "UNKNOWN";
    case ErrorCode::kBlobUploadUnknown:
      return "BLOB_UPLOAD_UNKNOWN";
    case ErrorCode::kBlobUploadInvalid:
      return "BLOB_UPLOAD_INVALID";
    case ErrorCode::kManifestInvalid:
      return "MANIFEST_INVALID";
    case ErrorCode::kManifestBlobUnknown:
      return "MANIFEST_BLOB_UNKNOWN";
    case ErrorCode::kSizeInvalid:
      return "SIZE_INVALID";
    case ErrorCode::kUnauthorized:
      return "UNAUTHORIZED";
    case ErrorCode::kDenied:
      return "DENIED";
    case ErrorCode::kTooManyRequests:
      return "TOOMANYREQUESTS";
    case ErrorCode::kPaginationNumberInvalid:
      return "PAGINATION_NUMBER_INVALID";
  }
  return "UNKNOWN";
}

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i] == '+' ? ' ' : in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  return true;
}

Route RouteRequest(std::string_view method, std::string_view target,
                   const RegistryLookup& registry_for) {
  std::string_view path = target, query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  bool read = method == "GET" || method == "HEAD";
  if (path == "/healthz") {
    if (!read) return MethodNotAllowed();
    Route r;
    r.kind = RouteKind::kHealth;
    return r;
  }
  if (path != "/v2" && path.substr(0, 4) != "/v2/")
    return Error(ErrorCode::kUnsupported, 404, "not found");
  bool known =
      read || method == "PUT" || method == "POST" || method == "PATCH" || method == "DELETE";
  if (!known) return MethodNotAllowed();

  Route r;
  if (auto bad = ParseQuery(query, &r)) return *bad;
  if (path == "/v2" || path == "/v2/") {
    if (!read) return MethodNotAllowed();
    r.kind = RouteKind::kBase;
    return r;
  }
  std::string_view rest = path.substr(4);
  if (!r.ns && registry_for) {
    size_t slash = rest.find('/');
    std::string_view first = rest.substr(0, slash);
    bool hostlike = first.find_first_of(".:_") != std::string_view::npos || first == "localhost";
    std::string_view after =
        slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    // Something must be left to name a repository: /v2/quay.io/manifests/v1
    // is the repository "quay.io" of the default upstream.
    bool named_after = !after.empty() && after.rfind("manifests/", 0) != 0 &&
                       after.rfind("blobs/", 0) != 0 && after.rfind("tags/", 0) != 0 &&
                       after.rfind("referrers/", 0) != 0;
    std::optional<std::string> registry =
        named_after && hostlike ? registry_for(first) : std::nullopt;
    if (registry) {
      r.ns = std::move(*registry);
      r.ns_from_path = true;
      rest = rest.substr(slash + 1);
    }
  }
  auto named = [&](std::string_view name, RouteKind kind) -> Route {
    if (!ValidRepositoryName(name))
      return Error(ErrorCode::kNameInvalid, 400, "invalid repository name");
    r.name = std::string(name);
    r.kind = kind;
    return r;
  };
  // Upload routes first: "uploads" is never a digest, so a repository whose
  // name ends in /blobs cannot be mistaken for one.
  if (EndsWith(rest, "/blobs/uploads/") || EndsWith(rest, "/blobs/uploads")) {
    if (method != "POST") return MethodNotAllowed();
    return named(rest.substr(0, rest.rfind("/blobs/uploads")), RouteKind::kUploadStart);
  }
  if (size_t at = rest.rfind("/blobs/uploads/"); at != std::string_view::npos) {
    std::string_view id = rest.substr(at + 15);
    if (id.find('/') == std::string_view::npos) {
      if (!ValidUploadId(id)) return Error(ErrorCode::kBlobUploadUnknown, 404, "no such upload");
      RouteKind kind = method == "GET"      ? RouteKind::kUploadStatus
                       : method == "PATCH"  ? RouteKind::kUploadPatch
                       : method == "PUT"    ? RouteKind::kUploadPut
                       : method == "DELETE" ? RouteKind::kUploadCancel
                                            : RouteKind::kError;
      if (kind == RouteKind::kError) return MethodNotAllowed();
      r.upload_id = std::string(id);
      return named(rest.substr(0, at), kind);
    }
  }
  if (EndsWith(rest, "/tags/list")) {
    if (!read) return MethodNotAllowed();
    return named(rest.substr(0, rest.size() - 10), RouteKind::kTagsList);
  }
  size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos || slash == 0)
    return Error(ErrorCode::kNameUnknown, 404, "unknown route");
  std::string_view ref = rest.substr(slash + 1);
  std::string_view head = rest.substr(0, slash);
  size_t kind_at = head.rfind('/');
  if (kind_at == std::string_view::npos)
    return Error(ErrorCode::kNameUnknown, 404, "unknown route");
  std::string_view kind = head.substr(kind_at + 1);
  std::string_view name = head.substr(0, kind_at);
  if (kind != "manifests" && kind != "blobs" && kind != "referrers")
    return Error(ErrorCode::kNameUnknown, 404, "unknown route");
  if (!ValidRepositoryName(name))
    return Error(ErrorCode::kNameInvalid, 400, "invalid repository name");
  r.name = std::string(name);
  if (kind == "blobs" || kind == "referrers") {
    auto d = util::Digest::Parse(ref);
    if (!d.ok()) return Error(ErrorCode::kDigestInvalid, 400, d.status().message());
    r.digest = *d;
    if (kind == "referrers") {
      if (method != "GET") return MethodNotAllowed();
      r.kind = RouteKind::kReferrers;
    } else {
      r.kind = read                 ? RouteKind::kBlob
               : method == "DELETE" ? RouteKind::kBlobDelete
                                    : RouteKind::kError;
      if (r.kind == RouteKind::kError) return MethodNotAllowed();
    }
    return r;
  }
  r.kind = read                 ? RouteKind::kManifest
           : method == "PUT"    ? RouteKind::kManifestPut
           : method == "DELETE" ? RouteKind::kManifestDelete
                                : RouteKind::kError;
  if (r.kind == RouteKind::kError) return MethodNotAllowed();
  if (ref.find(':') != std::string_view::npos) {
    auto d = util::Digest::Parse(ref);
    if (!d.ok()) return Error(ErrorCode::kDigestInvalid, 400, d.status().message());
    r.digest = *d;
  } else if (ValidTag(ref)) {
    r.tag = std::string(ref);
  } else {
    if (r.kind == RouteKind::kManifestPut)
      return Error(ErrorCode::kManifestInvalid, 400, "not a valid tag");
    return Error(ErrorCode::kManifestUnknown, 404,
                 "'" + std::string(ref.substr(0, 128)) + "' is not a valid tag");
  }
  return r;
}

}  // namespace oci
