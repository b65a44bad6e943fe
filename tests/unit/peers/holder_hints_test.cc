// peers::HolderHints: who is known to hold a digest, bounded.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "peers/holder_hints.h"
#include "util/sha256.h"

using util::DigestOf;
using Names = std::vector<std::string>;

TEST_CASE("holder hints: noted holders add up, each once, in the order noted") {
  peers::HolderHints h;
  util::Digest d = DigestOf("d");
  CHECK(h.Of(d).empty());
  h.Note(d, {"n1", "n2"});
  h.Note(d, {"n2", "n3"});
  h.Note(d, {});
  CHECK(h.Of(d) == Names{"n1", "n2", "n3"});
  CHECK(h.Of(DigestOf("other")).empty());
  CHECK(h.size() == 1);
}

TEST_CASE("holder hints: bounded; the digest noted first is forgotten first") {
  peers::HolderHints h(3);
  for (int i = 0; i < 3; ++i) h.Note(DigestOf(std::to_string(i)), {"n" + std::to_string(i)});
  h.Note(DigestOf("0"), {"again"});  // a known digest keeps its place
  h.Note(DigestOf("3"), {"n3"});
  CHECK(h.size() == 3);
  CHECK(h.Of(DigestOf("0")).empty());
  CHECK(h.Of(DigestOf("1")) == Names{"n1"});
  CHECK(h.Of(DigestOf("3")) == Names{"n3"});
  peers::HolderHints none(0);
  none.Note(DigestOf("x"), {"n1"});
  CHECK(none.size() == 0);
}
