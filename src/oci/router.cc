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

bool IsPushMethod(std::string_view m) {
  return m == "PUT" || m == "POST" || m == "PATCH" || m == "DELETE";
}

}  // namespace

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNameInvalid: return "NAME_INVALID";
    case ErrorCode::kNameUnknown: return "NAME_UNKNOWN";
    case ErrorCode::kDigestInvalid: return "DIGEST_INVALID";
    case ErrorCode::kManifestUnknown: return "MANIFEST_UNKNOWN";
    case ErrorCode::kBlobUnknown: return "BLOB_UNKNOWN";
    case ErrorCode::kUnsupported: return "UNSUPPORTED";
    case ErrorCode::kUnavailable: return "UNAVAILABLE";
    case ErrorCode::kUnknown: return "UNKNOWN";
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

Route RouteRequest(std::string_view method, std::string_view target) {
  std::string_view path = target, query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  bool read = method == "GET" || method == "HEAD";
  if (path == "/healthz") {
    if (!read) return Error(ErrorCode::kUnsupported, 405, "method not allowed");
    Route r;
    r.kind = RouteKind::kHealth;
    return r;
  }
  if (path != "/v2" && path.substr(0, 4) != "/v2/") return Error(ErrorCode::kUnsupported, 404, "not found");
  if (IsPushMethod(method)) return Error(ErrorCode::kUnsupported, 405, "this mirror is read-only: push is not supported");
  if (!read) return Error(ErrorCode::kUnsupported, 405, "method not allowed");

  Route r;
  // The query: only ns= matters; other parameters are ignored.
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.substr(0, 3) == "ns=") {
      std::string ns;
      if (!PercentDecode(kv.substr(3), &ns) || ns.empty())
        return Error(ErrorCode::kNameUnknown, 404, "malformed ns parameter");
      r.ns = std::move(ns);
    }
  }
  if (path == "/v2" || path == "/v2/") {
    r.kind = RouteKind::kBase;
    return r;
  }
  std::string_view rest = path.substr(4);
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t slash = rest.find('/', start);
    parts.push_back(rest.substr(start, slash == std::string_view::npos ? rest.npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 3) return Error(ErrorCode::kNameUnknown, 404, "unknown route");
  std::string_view kind = parts[parts.size() - 2];
  std::string_view ref = parts.back();
  std::string_view name = rest.substr(0, rest.size() - ref.size() - kind.size() - 2);
  if (kind != "manifests" && kind != "blobs") return Error(ErrorCode::kNameUnknown, 404, "unknown route");
  if (!ValidRepositoryName(name)) return Error(ErrorCode::kNameInvalid, 400, "invalid repository name");
  r.name = std::string(name);
  if (kind == "blobs") {
    auto d = util::Digest::Parse(ref);
    if (!d.ok()) return Error(ErrorCode::kDigestInvalid, 400, d.status().message());
    r.kind = RouteKind::kBlob;
    r.digest = *d;
    return r;
  }
  r.kind = RouteKind::kManifest;
  if (ref.find(':') != std::string_view::npos) {
    auto d = util::Digest::Parse(ref);
    if (!d.ok()) return Error(ErrorCode::kDigestInvalid, 400, d.status().message());
    r.digest = *d;
  } else if (ValidTag(ref)) {
    r.tag = std::string(ref);
  } else {
    return Error(ErrorCode::kManifestUnknown, 404, "'" + std::string(ref.substr(0, 128)) + "' is not a valid tag");
  }
  return r;
}

}  // namespace oci
