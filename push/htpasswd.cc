#include "push/htpasswd.h"

#include <crypt.h>
#include <sys/random.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace push {
namespace {

bool IsBcrypt(const std::string& h) {
  return h.size() == 60 && (h.compare(0, 4, "$2y$") == 0 || h.compare(0, 4, "$2b$") == 0 ||
                            h.compare(0, 4, "$2a$") == 0);
}

// A valid bcrypt hash of a random password: checked for unknown users.
const char* kDummyHash = "$2b$10$abcdefghijklmnopqrstuu1qVwQzd9lI2Q4yAj1aYbxXzP3b9tVBi";

bool CryptEquals(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
  if (!out || out[0] == '*') return false;
  size_t n = std::strlen(out);
  if (n != hash.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(out[i] ^ hash[i]);
  return diff == 0;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

util::Result<Htpasswd> Htpasswd::Parse(const std::string& text) {
  Htpasswd h;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0)
      return util::Status::InvalidArgument("line " + std::to_string(n) +
                                           ": must be user:bcrypt-hash");
    std::string hash = line.substr(colon + 1);
    if (!IsBcrypt(hash))
      return util::Status::InvalidArgument(
          "line " + std::to_string(n) +
          ": only bcrypt hashes are accepted (htpasswd -B, or georeg registry htpasswd)");
    h.users_[line.substr(0, colon)] = hash;
  }
  return h;
}

util::Result<Htpasswd> Htpasswd::Load(const std::string& path) {
  std::ifstream f(path);
  if (!f) return util::Status::IoError(path + ": cannot be read");
  std::stringstream ss;
  ss << f.rdbuf();
  auto h = Parse(ss.str());
  if (!h.ok()) return util::Status::InvalidArgument(path + ": " + h.status().message());
  return h;
}

bool Htpasswd::Verify(const std::string& user, const std::string& password) const {
  auto it = users_.find(user);
  if (it == users_.end()) {
    CryptEquals(password, kDummyHash);
    return false;
  }
  return CryptEquals(password, it->second);
}

util::Result<std::string> BcryptHash(const std::string& password, int cost) {
  if (cost < 4 || cost > 31)
    return util::Status::InvalidArgument("bcrypt cost must be from 4 to 31");
  char random[16];
  if (getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random))
    return util::Status::IoError("no randomness for a salt");
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn("$2b$", cost, random, sizeof random, setting, sizeof setting))
    return util::Status::IoError("crypt_gensalt_rn failed");
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_r(password.c_str(), setting, data.get());
  if (!out || out[0] == '*') return util::Status::IoError("crypt_r failed");
  return std::string(out);
}

bool ParseBasicAuth(const std::string& header, std::string* user, std::string* password) {
  if (header.size() < 6 || strncasecmp(header.c_str(), "basic ", 6) != 0) return false;
  std::string decoded;
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 6;
  while (i < header.size() && header[i] == ' ') ++i;
  if (header.size() - i > 4096) return false;
  for (; i < header.size(); ++i) {
    char c = header[i];
    if (c == '=') break;
    int v = Base64Value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      decoded.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  *user = decoded.substr(0, colon);
  *password = decoded.substr(colon + 1);
  return true;
}

}  // namespace push
