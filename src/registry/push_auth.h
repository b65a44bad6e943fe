// PushAuth: HTTP Basic authentication of the own registry's clients
// against `[registry] push_htpasswd` (docs/replication.md, "Credentials").
//
// A missing or wrong credential is answered 401 with a Basic challenge; an
// address with too many failures in a minute is answered 429 without a
// check. bcrypt checks run on libuv's threadpool; a credential that passed
// is remembered for kCacheMs as a SHA-256 of the header (never the
// password), at most kMaxCached of them.
//
// Ownership: shares the loaded htpasswd with the checks in flight; a check
// that ends after the PushAuth is gone does nothing. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "push/failure_limiter.h"
#include "push/htpasswd.h"
#include "src/http/server.h"
#include "src/io/env.h"
#include "src/io/lifetime.h"
#include "util/status.h"

namespace registry {

class PushAuth {
 public:
  // `pull_requires_auth`: [registry] pull_auth = "htpasswd" (Authorize).
  PushAuth(io::Env env, std::string realm, uint32_t failures_per_minute, bool pull_requires_auth);
  ~PushAuth();
  PushAuth(const PushAuth&) = delete;
  PushAuth& operator=(const PushAuth&) = delete;

  // Reads the htpasswd file. Errors: from push::Htpasswd::Load.
  util::Status Load(const std::string& path);
  size_t users() const { return htpasswd_ ? htpasswd_->size() : 0; }
  // Calls `then` (now, for a remembered credential, or later) when the
  // request carries a valid credential; otherwise answers it.
  void Check(const std::shared_ptr<http::Exchange>& ex, std::function<void()> then);
  // As Check, for a request that reads (`write` false: checked only when
  // pulls need credentials) or writes the registry.
  void Authorize(const std::shared_ptr<http::Exchange>& ex, bool write, std::function<void()> then);
  bool pull_requires_auth() const { return pull_requires_auth_; }

  uint64_t failures() const { return failures_; }
  uint64_t throttled() const { return throttled_; }

  static constexpr uint64_t kCacheMs = 5 * 60 * 1000;
  static constexpr size_t kMaxCached = 1024;

 private:
  io::Env env_;
  std::string realm_;
  bool pull_requires_auth_;
  std::shared_ptr<const push::Htpasswd> htpasswd_;
  push::FailureLimiter limiter_;
  std::unordered_map<std::string, uint64_t> passed_;  // SHA-256 of the header -> when it passed
  io::Lifetime life_;  // guards callbacks that may outlive this object
  uint64_t failures_ = 0, throttled_ = 0;
};

}  // namespace registry
