// Gossip messages on the wire (peers/message_codec.h).
#include "peers/message_codec.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "peers/hlc.h"
#include "peers/tag_table.h"
#include "tests/unit/test_signers.h"
#include "util/sha256.h"

using peers::HlcTimestamp;
using peers::HybridLogicalClock;
using testing_keys::KeyFor;
using util::DigestOf;

TEST_CASE("codec: messages round-trip; malformed ones are refused without throwing") {
  peers::Message m;
  m.type = peers::MessageType::kSyncReply;
  m.from = "n1";
  m.seq = 42;
  m.target = "n2";
  m.summary_version = 7;
  m.members.push_back(
      {"n1", "eu", "http://10.0.0.1:5000", peers::MemberState::kSuspect, 9, "k1", "s1"});
  m.tags.push_back(
      {{"docker.io", "library/alpine", "3.19"}, {DigestOf("a"), {1790000000000, 3}, "n1", "s2"}});
  m.tag_summaries = {0, 0xfedcba9876543210ull};
  m.revocations.push_back({"n3", "k3", "n1", "s3"});
  auto back = peers::DecodeMessage(peers::EncodeMessage(m));
  REQUIRE(back.ok());
  CHECK(back->type == m.type);
  CHECK(back->from == "n1");
  CHECK(back->seq == 42);
  CHECK(back->target == "n2");
  CHECK(back->summary_version == 7);
  REQUIRE(back->members.size() == 1);
  CHECK(back->members[0].state == peers::MemberState::kSuspect);
  CHECK(back->members[0].incarnation == 9);
  CHECK(back->members[0].public_key == "k1");
  CHECK(back->members[0].signature == "s1");
  CHECK(back->tags[0].version.signature == "s2");
  REQUIRE(back->revocations.size() == 1);
  CHECK(back->revocations[0].Key() == m.revocations[0].Key());
  CHECK(back->revocations[0].by == "n1");
  CHECK(back->revocations[0].signature == "s3");
  REQUIRE(back->tags.size() == 1);
  CHECK(back->tags[0].key == m.tags[0].key);
  CHECK(back->tags[0].version.digest == DigestOf("a"));
  CHECK(back->tags[0].version.hlc == m.tags[0].version.hlc);
  CHECK(back->tag_summaries == m.tag_summaries);
  for (const char* bad : {"", "[]", "{}", "{\"type\":\"ping\"}", "not json",
                          "{\"type\":\"nope\",\"from\":\"a\",\"seq\":1,\"target\":\"\",\"sv\":0,"
                          "\"members\":[],\"tags\":[],\"summaries\":[]}",
                          "{\"type\":\"ping\",\"from\":\"a\",\"seq\":-1,\"target\":\"\",\"sv\":0,"
                          "\"members\":[],\"tags\":[],\"summaries\":[]}",
                          "{\"type\":\"ping\",\"from\":\"a\",\"seq\":1,\"target\":\"\",\"sv\":0,"
                          "\"members\":[{}],\"tags\":[],\"summaries\":[]}",
                          "{\"type\":\"ping\",\"from\":\"a\",\"seq\":1,\"target\":\"\",\"sv\":0,"
                          "\"members\":[],\"tags\":[],\"summaries\":[\"xyz\"]}"}) {
    CHECK_FALSE(peers::DecodeMessage(bad).ok());
  }
}
