// libFuzzer: the small grammars: references and digests (through the
// router, push routes and their query parameters included), Range,
// Content-Range, Accept, WWW-Authenticate, Basic credentials, htpasswd
// files, URLs and CIDRs.
#include <cstdint>
#include <string>

#include "push/htpasswd.h"
#include "src/http/range.h"
#include "src/oci/media_types.h"
#include "src/oci/router.h"
#include "src/upstream/www_authenticate.h"
#include "util/digest.h"
#include "util/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  (void)oci::RouteRequest("GET", s);
  (void)oci::RouteRequest("HEAD", "/v2/" + s);
  for (const char* m : {"PUT", "POST", "PATCH", "DELETE"}) (void)oci::RouteRequest(m, "/v2/" + s);
  (void)oci::RouteRequest("POST", "/v2/a/blobs/uploads/?" + s);
  std::string user, password;
  if (push::ParseBasicAuth(s, &user, &password) && user.size() + password.size() > s.size())
    __builtin_trap();
  (void)push::Htpasswd::Parse(s);  // parsing only: a check would cost a bcrypt
  (void)util::Digest::Parse(s);
  http::ByteRange r = http::ParseRange(s, size * 7919);
  if (r.kind == http::ByteRange::kPartial && (r.first > r.last || r.last >= size * 7919))
    __builtin_trap();
  uint64_t first, last, total;
  if (http::ParseContentRange(s, &first, &last, &total) && (first > last || last >= total))
    __builtin_trap();
  (void)oci::AcceptsMediaType(&s, "application/vnd.oci.image.manifest.v1+json");
  for (const auto& c : upstream::ParseWwwAuthenticate(s)) (void)c.Param("realm");
  auto u = util::ParseUrl(s);
  if (u.ok() && (u->host.empty() || u->port == 0 || u->path.empty() || u->path[0] != '/'))
    __builtin_trap();
  (void)util::ParseCidr(s);
  return 0;
}
