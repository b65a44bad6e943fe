// Status and Result<T>: how every module reports failure without exceptions.
//
// A Status is OK (cheap: no allocation) or carries a Code and a one-line
// message meant for a log line or an operator. Library error codes (libuv,
// LMDB, llhttp, toml++) are translated into a Status once, at their wrapper;
// they never cross a module boundary raw. Thread-compatible: a Status is a
// plain value.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace util {

enum class Code {
  kOk = 0,
  kNotFound,           // the thing asked for does not exist
  kInvalidArgument,    // malformed input (from a client, a file, a flag)
  kCorruption,         // bytes failed verification (digest, checksum, format)
  kIoError,            // the OS or a store refused
  kUnavailable,        // a remote end is unreachable, refused or answered 5xx
  kTimeout,            // a deadline passed
  kNoSpace,            // disk or map full
  kAborted,            // cancelled on purpose (shutdown, client gone)
  kInternal,           // a bug: a broken invariant
  kPermissionDenied,   // a request failed authentication, or a budget refused it
  kResourceExhausted,  // a bound on things held at once was reached
};

const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IoError(std::string msg) { return Status(Code::kIoError, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status Timeout(std::string msg) { return Status(Code::kTimeout, std::move(msg)); }
  static Status NoSpace(std::string msg) { return Status(Code::kNoSpace, std::move(msg)); }
  static Status Aborted(std::string msg) { return Status(Code::kAborted, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  static Status PermissionDenied(std::string msg) {
    return Status(Code::kPermissionDenied, std::move(msg));
  }
  static Status ResourceExhausted(std::string msg) {
    return Status(Code::kResourceExhausted, std::move(msg));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsNoSpace() const { return code_ == Code::kNoSpace; }

  // "not found: manifest sha256:..." or "ok".
  std::string ToString() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Result<T> holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT  REQUIRES: !status.ok()

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace util
