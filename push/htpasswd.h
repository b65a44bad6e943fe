// Htpasswd: the push credentials of the own registry, as CNCF Distribution
// reads them: one "user:hash" per line, bcrypt hashes only ($2y$, $2b$,
// $2a$; `htpasswd -B` writes them). Verification is libxcrypt's crypt_r,
// which costs what the hash's cost factor says (about 50 ms at cost 10):
// callers run it off the loop thread and cache what succeeded.
//
// Pure but for reading the file in Load. Thread-safe once built (const).
#pragma once

#include <map>
#include <string>

#include "util/status.h"

namespace push {

class Htpasswd {
 public:
  // Errors: InvalidArgument naming the line (no ':', empty user, not bcrypt).
  static util::Result<Htpasswd> Parse(const std::string& text);
  // Errors: IoError (unreadable), or Parse's.
  static util::Result<Htpasswd> Load(const std::string& path);
  // Whether `password` is `user`'s. Constant work for unknown users (a
  // dummy hash is checked), so timing does not tell which users exist.
  bool Verify(const std::string& user, const std::string& password) const;
  size_t size() const { return users_.size(); }

 private:
  std::map<std::string, std::string> users_;
};

// A bcrypt hash of `password` at `cost` (4..31) with a fresh salt, as
// `georeg registry htpasswd` prints it. Errors: InvalidArgument, IoError
// (no randomness).
util::Result<std::string> BcryptHash(const std::string& password, int cost = 10);

// Splits "Basic <base64(user:password)>". False when the header is not that.
bool ParseBasicAuth(const std::string& header, std::string* user, std::string* password);

}  // namespace push
