// The manifest tree walk (push/manifest_tree.h): what is reached, what is
// missing, each blob once, the depth bound, the item bound.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "push/manifest_tree.h"
#include "util/sha256.h"

using util::DigestOf;

namespace {

struct Fake {
  std::map<util::Digest, push::PushedManifest> held;
  std::vector<util::Digest> unreadable;
  int reads = 0;
  push::ManifestReader Reader() {
    return [this](const util::Digest& d) -> util::Result<push::PushedManifest> {
      ++reads;
      for (const auto& u : unreadable)
        if (u == d) return util::Status::InvalidArgument("does not parse");
      auto it = held.find(d);
      if (it == held.end()) return util::Status::NotFound("not here");
      return it->second;
    };
  }
};

push::PushedManifest Image(std::vector<util::Digest> blobs) {
  push::PushedManifest m;
  m.blobs = std::move(blobs);
  return m;
}

push::PushedManifest Index(std::vector<util::Digest> children) {
  push::PushedManifest m;
  m.manifests = std::move(children);
  return m;
}

}  // namespace

TEST_CASE("manifest tree: an index, its images, their blobs once each, in order") {
  util::Digest idx = DigestOf("index"), amd = DigestOf("amd64"), arm = DigestOf("arm64");
  util::Digest cfg1 = DigestOf("cfg1"), cfg2 = DigestOf("cfg2"), base = DigestOf("base layer");
  Fake f;
  f.held[idx] = Index({amd, arm});
  f.held[amd] = Image({cfg1, base});
  f.held[arm] = Image({cfg2, base});
  push::ManifestTree t = push::WalkManifestTree(idx, f.Reader());
  CHECK(t.manifests == std::vector<util::Digest>{idx, amd, arm});
  CHECK(t.blobs == std::vector<util::Digest>{cfg1, base, cfg2});
  CHECK(t.missing.empty());
  CHECK_FALSE(t.too_deep);
  CHECK_FALSE(t.truncated);
  CHECK(f.reads == 3);
}

TEST_CASE("manifest tree: a missing child is listed, an unreadable one is not, nothing below") {
  util::Digest idx = DigestOf("index"), gone = DigestOf("gone"), bad = DigestOf("bad");
  util::Digest ok = DigestOf("ok"), layer = DigestOf("layer");
  Fake f;
  f.held[idx] = Index({gone, bad, ok, ok});  // a child named twice is read once
  f.held[ok] = Image({layer});
  f.unreadable = {bad};
  push::ManifestTree t = push::WalkManifestTree(idx, f.Reader());
  CHECK(t.manifests == std::vector<util::Digest>{idx, gone, bad, ok});
  CHECK(t.missing == std::vector<util::Digest>{gone});
  CHECK(t.blobs == std::vector<util::Digest>{layer});
  CHECK(f.reads == 4);

  Fake none;
  push::ManifestTree top = push::WalkManifestTree(idx, none.Reader());
  CHECK(top.missing == std::vector<util::Digest>{idx});
  CHECK(top.blobs.empty());
}

TEST_CASE("manifest tree: two levels of indexes at most; a cycle ends") {
  util::Digest a = DigestOf("a"), b = DigestOf("b"), c = DigestOf("c"), d = DigestOf("d");
  Fake f;
  f.held[a] = Index({b});
  f.held[b] = Index({c});
  f.held[c] = Index({d});  // three levels below a: d is never read
  push::ManifestTree t = push::WalkManifestTree(a, f.Reader());
  CHECK(t.manifests == std::vector<util::Digest>{a, b, c});
  CHECK(t.too_deep);
  CHECK(t.missing.empty());

  Fake loop;
  loop.held[a] = Index({b});
  loop.held[b] = Index({a});
  push::ManifestTree l = push::WalkManifestTree(a, loop.Reader());
  CHECK(l.manifests == std::vector<util::Digest>{a, b});
  CHECK(loop.reads == 2);
}

TEST_CASE("manifest tree: stops at max_items and says so") {
  std::vector<util::Digest> layers;
  for (int i = 0; i < 10; ++i) layers.push_back(DigestOf("layer" + std::to_string(i)));
  util::Digest idx = DigestOf("index"), one = DigestOf("one"), two = DigestOf("two");
  Fake f;
  f.held[idx] = Index({one, two});
  f.held[one] = Image(layers);
  f.held[two] = Image({DigestOf("other")});
  push::ManifestTree t = push::WalkManifestTree(idx, f.Reader(), 5);
  CHECK(t.truncated);
  CHECK(t.manifests == std::vector<util::Digest>{idx, one});
  CHECK(t.blobs.size() == 10);  // a manifest's blobs are taken whole
}
