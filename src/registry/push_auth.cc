#include "src/registry/push_auth.h"

#include <uv.h>

#include "src/registry/oci_errors.h"
#include "util/digest.h"
#include "util/log.h"
#include "util/sha256.h"

namespace registry {

using util::Status;

namespace {

// One bcrypt check on the threadpool.
struct AuthWork {
  uv_work_t req;
  std::shared_ptr<const push::Htpasswd> htpasswd;
  std::string user, password;
  bool ok = false;
  std::function<void(bool)> done;
};

}  // namespace

PushAuth::PushAuth(io::Env env, std::string realm, uint32_t failures_per_minute,
                   bool pull_requires_auth)
    : env_(env),
      realm_(std::move(realm)),
      pull_requires_auth_(pull_requires_auth),
      limiter_(failures_per_minute) {}

void PushAuth::Authorize(const std::shared_ptr<http::Exchange>& ex, bool write,
                         std::function<void()> then) {
  if (!write && !pull_requires_auth_) return then();
  Check(ex, std::move(then));
}

PushAuth::~PushAuth() = default;

Status PushAuth::Load(const std::string& path) {
  auto h = push::Htpasswd::Load(path);
  if (!h.ok()) return h.status();
  htpasswd_ = std::make_shared<const push::Htpasswd>(std::move(*h));
  return Status::Ok();
}

void PushAuth::Check(const std::shared_ptr<http::Exchange>& ex, std::function<void()> then) {
  auto challenge = [this, ex](int status, const char* code, const std::string& message) {
    auto headers = BaseHeaders();
    // The map page (/ui/) asks with X-Georeg-UI: a Basic challenge would make
    // the browser open its own login dialog over the page's form.
    const char* scheme = ex->request().Find("x-georeg-ui") ? "GeoregBasic" : "Basic";
    headers.push_back(
        {"WWW-Authenticate", std::string(scheme) + " realm=\"" + realm_ + "\", charset=\"UTF-8\""});
    headers.push_back({"Content-Type", "application/json"});
    ex->Respond(status, headers, OciErrorBody(code, message));
  };
  const std::string& remote = ex->request().remote;
  uint64_t now = env_.clock->NowMs();
  if (!limiter_.Allowed(remote, now)) {
    ++throttled_;
    auto headers = BaseHeaders();
    headers.push_back({"Retry-After", "60"});
    headers.push_back({"Content-Type", "application/json"});
    ex->Respond(
        429, headers,
        OciErrorBody("TOOMANYREQUESTS", "too many failed logins from this address; wait a minute"));
    return;
  }
  const std::string* header = ex->request().Find("authorization");
  std::string user, password;
  if (!header || !push::ParseBasicAuth(*header, &user, &password)) {
    challenge(401, "UNAUTHORIZED", "authentication required");
    return;
  }
  std::string key = util::DigestOf(*header).Hex();
  if (auto it = passed_.find(key); it != passed_.end() && now - it->second < kCacheMs) {
    then();
    return;
  }
  auto* w = new AuthWork{{}, htpasswd_, user, password, false, nullptr};
  w->req.data = w;
  w->done = life_.Guard([this, ex, key, remote, then = std::move(then), challenge](bool ok) {
    if (!ex->active()) return;
    uint64_t now = env_.clock->NowMs();
    if (!ok) {
      ++failures_;
      limiter_.Failed(remote, now);
      LOG_INFO("registry: failed login from %s", remote.c_str());
      challenge(401, "UNAUTHORIZED", "wrong user name or password");
      return;
    }
    if (passed_.size() >= kMaxCached) passed_.clear();  // bounded; a miss only costs one more check
    passed_[key] = now;
    then();
  });
  int rc = uv_queue_work(
      env_.loop, &w->req,
      [](uv_work_t* r) {
        auto* w = static_cast<AuthWork*>(r->data);
        w->ok = w->htpasswd->Verify(w->user, w->password);
      },
      [](uv_work_t* r, int status) {
        auto* w = static_cast<AuthWork*>(r->data);
        w->done(status == 0 && w->ok);
        delete w;
      });
  if (rc != 0) {
    delete w;
    RespondOciError(ex, 503, "UNAVAILABLE", "cannot check credentials now");
  }
}

}  // namespace registry
