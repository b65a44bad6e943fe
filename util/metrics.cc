#include "util/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace util {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  assert(std::is_sorted(bounds_.begin(), bounds_.end()));
}

void Histogram::Observe(double v) {
  // Prometheus buckets are "less than or equal": the first bound >= v.
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  ++counts_[i];
  ++count_;
  sum_ += v;
}

std::vector<double> Histogram::LatencyBounds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> Histogram::SizeBounds() {
  std::vector<double> b;
  for (double v = 1024; v <= 4.0 * 1024 * 1024 * 1024; v *= 4) b.push_back(v);
  return b;
}

bool Exposition::ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool Exposition::ValidLabelName(std::string_view name) {
  if (name.empty() || name.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string Exposition::FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    // The shortest of %.15g and %.17g that reads back as the same double.
    std::snprintf(buf, sizeof buf, "%.15g", v);
    if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
  }
  return buf;
}

namespace {

// HELP text escapes backslash and newline; label values also the double quote.
void AppendEscaped(std::string* out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (quote && c == '"') {
      *out += "\\\"";
    } else {
      *out += c;
    }
  }
}

}  // namespace

void Exposition::Family(std::string_view name, Type type, std::string_view help) {
  assert(ValidName(name));
  assert(std::find(names_.begin(), names_.end(), name) == names_.end());
  names_.emplace_back(name);
  family_ = std::string(name);
  type_ = type;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  AppendEscaped(&out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += type == Type::kCounter ? " counter\n"
          : type == Type::kGauge ? " gauge\n"
                                 : " histogram\n";
}

void Exposition::Line(std::string_view suffix, const Labels& labels, const char* extra_name,
                      const std::string& extra_value, double value) {
  out_ += family_;
  out_ += suffix;
  bool any = !labels.empty() || extra_name;
  if (any) {
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      assert(ValidLabelName(k));
      if (!first) out_ += ',';
      first = false;
      out_ += k;
      out_ += "=\"";
      AppendEscaped(&out_, v, true);
      out_ += '"';
    }
    if (extra_name) {
      if (!first) out_ += ',';
      out_ += extra_name;
      out_ += "=\"";
      out_ += extra_value;
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += FormatValue(value);
  out_ += '\n';
}

void Exposition::Sample(const Labels& labels, double value) {
  assert(type_ != Type::kHistogram);
  Line("", labels, nullptr, "", value);
}

void Exposition::Sample(const Labels& labels, const Histogram& h) {
  assert(type_ == Type::kHistogram);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds().size(); ++i) {
    cumulative += h.counts()[i];
    Line("_bucket", labels, "le", FormatValue(h.bounds()[i]), double(cumulative));
  }
  Line("_bucket", labels, "le", "+Inf", double(h.count()));
  Line("_sum", labels, nullptr, "", h.sum());
  Line("_count", labels, nullptr, "", double(h.count()));
}

}  // namespace util
