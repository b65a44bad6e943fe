// Metrics: the pieces of the Prometheus text exposition format (0.0.4) that
// georeg's /metrics page is built from.
//
// Histogram counts observations into fixed buckets; its owner observes
// (from one thread, the loop thread) and the page reads it. Exposition
// writes families in the order they are added: "# HELP", "# TYPE", then the
// samples, with label values and help text escaped as the format requires.
// Names and label names are checked (a bad one is a programming error:
// assert). Label values must come from bounded sets; that is the caller's
// promise, never repository, tag, digest or client address.
// Pure: no I/O, no clock. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace util {

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, ascending; +Inf is implied.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Per bucket, not cumulative; one more than bounds() (the +Inf bucket).
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

  // Buckets for request latencies, 0.5 ms to 60 s.
  static std::vector<double> LatencyBounds();
  // Buckets for sizes in bytes, 1 KiB to 4 GiB, by powers of 4.
  static std::vector<double> SizeBounds();

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

using Labels = std::vector<std::pair<std::string_view, std::string>>;

class Exposition {
 public:
  enum class Type { kCounter, kGauge, kHistogram };
  // Starts a family. Every family name is given once.
  void Family(std::string_view name, Type type, std::string_view help);
  // A sample of the current family (a counter or a gauge).
  void Sample(const Labels& labels, double value);
  void Sample(double value) { Sample({}, value); }
  // The current family's `_bucket`, `_sum` and `_count` series for `h`.
  void Sample(const Labels& labels, const Histogram& h);
  const std::string& text() const { return out_; }

  // Names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: [a-zA-Z_][a-zA-Z0-9_]*, not "__" first.
  static bool ValidName(std::string_view name);
  static bool ValidLabelName(std::string_view name);
  // The format's number spelling: integers without exponent, +Inf, -Inf, NaN.
  static std::string FormatValue(double v);

 private:
  void Line(std::string_view suffix, const Labels& labels, const char* extra_name,
            const std::string& extra_value, double value);
  std::string out_;
  std::string family_;
  Type type_ = Type::kGauge;
  std::vector<std::string> names_;  // every family so far (checked unique)
};

}  // namespace util
