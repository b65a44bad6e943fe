// TLS for upstream connections, on mbedTLS 2.28, without sockets.
//
// TlsContext holds what all connections to one upstream share: the trusted
// CAs (the system bundle, or the upstream's `ca_file`), the verification
// mode and the random generator. TlsSession is one TLS connection driven by
// memory buffers: the caller feeds it ciphertext read from the socket and
// sends whatever ciphertext it produces, so libuv stays in charge of I/O.
//
// Every session checks the peer's certificate against the CAs and the host
// name (mbedtls_ssl_set_hostname on every session: Debian's 2.28.3 accepts
// any CA-signed certificate without it), unless the upstream is configured
// with insecure_skip_verify. mbedTLS codes become Status here.
// Loop thread only; a TlsContext must outlive its sessions (shared_ptr).
#pragma once

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace upstream {

inline constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

class TlsContext {
 public:
  // Trusts the CAs in every file of `ca_files` (empty: the system bundle).
  // Errors: InvalidArgument when a CA file cannot be read or parsed.
  static util::Result<std::shared_ptr<TlsContext>> Create(const std::vector<std::string>& ca_files,
                                                          bool insecure_skip_verify);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  const mbedtls_ssl_config* config() const { return &conf_; }

 private:
  TlsContext();
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
  mbedtls_x509_crt ca_;
  mbedtls_ssl_config conf_;
};

class TlsSession {
 public:
  enum class Progress { kDone, kWantIo };

  // REQUIRES: ctx outlives the session (held by shared_ptr).
  TlsSession(std::shared_ptr<TlsContext> ctx, const std::string& host);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext that arrived from the socket.
  void Feed(const char* data, size_t len) { in_.append(data, len); }
  // Ciphertext to send to the socket (taken: the session forgets it).
  std::string TakeOutput() { return std::move(out_); }

  // Drives the handshake. Errors: Unavailable with the reason, naming a
  // certificate problem (wrong host, expired, unknown CA) when there is one.
  util::Result<Progress> Handshake();
  // Encrypts `data`; the ciphertext is then in TakeOutput().
  util::Status Write(const std::string& data);
  // Decrypts what was fed: appends plaintext to *out. Returns false at the
  // peer's close_notify. Errors: Unavailable.
  util::Result<bool> Read(std::string* out);

 private:
  static int Send(void* self, const unsigned char* buf, size_t len);
  static int Recv(void* self, unsigned char* buf, size_t len);
  util::Status Error(int rc, const char* what) const;

  std::shared_ptr<TlsContext> ctx_;
  std::string host_;
  mbedtls_ssl_context ssl_;
  std::string in_;
  size_t in_pos_ = 0;
  std::string out_;
};

}  // namespace upstream
