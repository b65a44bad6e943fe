#include "src/upstream/www_authenticate.h"

#include <cctype>

namespace upstream {
namespace {

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool Consume(char c) {
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::string Token() {
    SkipSpace();
    size_t start = i_;
    while (i_ < s_.size() && IsTokenChar(s_[i_])) ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  // token68 may end in '='; used only to skip it.
  void SkipToken68() {
    SkipSpace();
    while (i_ < s_.size() && (IsTokenChar(s_[i_]) || s_[i_] == '/' || s_[i_] == '=')) ++i_;
  }
  bool Quoted(std::string* out) {
    SkipSpace();
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (c == '\\' && i_ < s_.size()) c = s_[i_++];
      out->push_back(c);
    }
    return false;  // unterminated
  }
  // Is the next thing "token =" (a parameter) rather than a new scheme?
  // A token68 ("abc123==") also has '=' after a token, but then '=', ',' or
  // the end follows, never a value.
  bool AtParam() {
    size_t save = i_;
    std::string t = Token();
    bool param = !t.empty() && Consume('=');
    if (param) {
      SkipSpace();
      param = i_ < s_.size() && s_[i_] != ',' && s_[i_] != '=';
    }
    i_ = save;
    return param;
  }
  size_t pos() const { return i_; }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::vector<Challenge> ParseWwwAuthenticate(std::string_view header) {
  std::vector<Challenge> out;
  Scanner sc(header);
  for (;;) {
    while (sc.Consume(',')) {
    }
    std::string scheme = sc.Token();
    if (scheme.empty()) break;
    Challenge ch;
    ch.scheme = Lower(scheme);
    // Parameters until a comma followed by something that is not "name=".
    for (;;) {
      size_t before = sc.pos();
      if (!sc.AtParam()) {
        if (sc.pos() == before) sc.SkipToken68();
        break;
      }
      std::string name = Lower(sc.Token());
      sc.Consume('=');
      std::string value;
      if (!sc.Quoted(&value)) value = sc.Token();
      ch.params[name] = value;
      if (!sc.Consume(',')) break;
      if (!sc.AtParam()) break;  // the comma began the next challenge
    }
    out.push_back(std::move(ch));
    if (sc.done()) break;
  }
  return out;
}

const Challenge* FindChallenge(const std::vector<Challenge>& challenges, std::string_view scheme) {
  for (const Challenge& c : challenges)
    if (c.scheme == scheme) return &c;
  return nullptr;
}

}  // namespace upstream
