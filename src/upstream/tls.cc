#include "src/upstream/tls.h"

#include <mbedtls/error.h>

#include <cstring>

namespace upstream {

using util::Status;

namespace {
std::string MbedError(int rc) {
  char buf[200];
  mbedtls_strerror(rc, buf, sizeof(buf));
  return buf;
}
}  // namespace

TlsContext::TlsContext() {
  mbedtls_entropy_init(&entropy_);
  mbedtls_ctr_drbg_init(&drbg_);
  mbedtls_x509_crt_init(&ca_);
  mbedtls_ssl_config_init(&conf_);
}

TlsContext::~TlsContext() {
  mbedtls_ssl_config_free(&conf_);
  mbedtls_x509_crt_free(&ca_);
  mbedtls_ctr_drbg_free(&drbg_);
  mbedtls_entropy_free(&entropy_);
}

util::Result<std::shared_ptr<TlsContext>> TlsContext::Create(
    const std::vector<std::string>& ca_files, bool insecure_skip_verify) {
  std::shared_ptr<TlsContext> ctx(new TlsContext());
  static const char kPers[] = "georeg";
  int rc = mbedtls_ctr_drbg_seed(&ctx->drbg_, mbedtls_entropy_func, &ctx->entropy_,
                                 reinterpret_cast<const unsigned char*>(kPers), sizeof(kPers) - 1);
  if (rc) return Status::Internal("TLS random generator: " + MbedError(rc));
  std::vector<std::string> files =
      ca_files.empty() ? std::vector<std::string>{kSystemCaBundle} : ca_files;
  for (const std::string& file : files) {
    rc = mbedtls_x509_crt_parse_file(&ctx->ca_, file.c_str());
    // A positive result counts certificates that failed to parse in a bundle
    // that also held good ones; only a bundle with none usable is an error.
    if (rc < 0) return Status::InvalidArgument("CA file " + file + ": " + MbedError(rc));
  }
  rc = mbedtls_ssl_config_defaults(&ctx->conf_, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                   MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc) return Status::Internal("TLS config: " + MbedError(rc));
  mbedtls_ssl_conf_authmode(
      &ctx->conf_, insecure_skip_verify ? MBEDTLS_SSL_VERIFY_NONE : MBEDTLS_SSL_VERIFY_REQUIRED);
  mbedtls_ssl_conf_ca_chain(&ctx->conf_, &ctx->ca_, nullptr);
  mbedtls_ssl_conf_rng(&ctx->conf_, mbedtls_ctr_drbg_random, &ctx->drbg_);
  mbedtls_ssl_conf_min_version(&ctx->conf_, MBEDTLS_SSL_MAJOR_VERSION_3,
                               MBEDTLS_SSL_MINOR_VERSION_3);  // TLS 1.2+
  return ctx;
}

TlsSession::TlsSession(std::shared_ptr<TlsContext> ctx, const std::string& host)
    : ctx_(std::move(ctx)), host_(host) {
  mbedtls_ssl_init(&ssl_);
  mbedtls_ssl_setup(&ssl_, ctx_->config());
  // Always: the name the certificate must carry, and SNI.
  mbedtls_ssl_set_hostname(&ssl_, host_.c_str());
  mbedtls_ssl_set_bio(&ssl_, this, Send, Recv, nullptr);
}

TlsSession::~TlsSession() { mbedtls_ssl_free(&ssl_); }

int TlsSession::Send(void* p, const unsigned char* buf, size_t len) {
  static_cast<TlsSession*>(p)->out_.append(reinterpret_cast<const char*>(buf), len);
  return static_cast<int>(len);
}

int TlsSession::Recv(void* p, unsigned char* buf, size_t len) {
  auto* self = static_cast<TlsSession*>(p);
  size_t avail = self->in_.size() - self->in_pos_;
  if (avail == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  size_t n = std::min(avail, len);
  std::memcpy(buf, self->in_.data() + self->in_pos_, n);
  self->in_pos_ += n;
  if (self->in_pos_ == self->in_.size()) {
    self->in_.clear();
    self->in_pos_ = 0;
  }
  return static_cast<int>(n);
}

Status TlsSession::Error(int rc, const char* what) const {
  std::string msg = std::string("TLS ") + what + " with " + host_ + ": " + MbedError(rc);
  uint32_t flags = mbedtls_ssl_get_verify_result(&ssl_);
  if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags != 0 &&
      flags != static_cast<uint32_t>(-1)) {
    char info[512];
    mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
    std::string reasons(info);
    for (char& c : reasons)
      if (c == '\n') c = ';';
    while (!reasons.empty() && (reasons.back() == ';' || reasons.back() == ' ')) reasons.pop_back();
    msg = "TLS certificate of " + host_ + " rejected: " + reasons;
  }
  return Status::Unavailable(msg);
}

util::Result<TlsSession::Progress> TlsSession::Handshake() {
  int rc = mbedtls_ssl_handshake(&ssl_);
  if (rc == 0) return Progress::kDone;
  if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return Progress::kWantIo;
  return Error(rc, "handshake");
}

Status TlsSession::Write(const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    int rc = mbedtls_ssl_write(&ssl_, reinterpret_cast<const unsigned char*>(data.data()) + off,
                               data.size() - off);
    if (rc < 0) return Error(rc, "write");
    off += rc;
  }
  return Status::Ok();
}

util::Result<bool> TlsSession::Read(std::string* out) {
  char buf[16384];
  for (;;) {
    int rc = mbedtls_ssl_read(&ssl_, reinterpret_cast<unsigned char*>(buf), sizeof(buf));
    if (rc > 0) {
      out->append(buf, rc);
      continue;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return true;
    if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return false;
    return Error(rc, "read");
  }
}

}  // namespace upstream
