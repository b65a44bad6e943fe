// libFuzzer: gossip messages and digest summaries as peers send them, a
// decoded message fed to a gossip node (it must keep its bounds), and the
// values fleet records carry (own tags, replications, sync reports).
#include <cstdint>
#include <string>

#include "peers/bloom.h"
#include "peers/gossip_node.h"
#include "peers/message_codec.h"
#include "peers/node_key.h"
#include "push/replication.h"
#include "push/tag_value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  (void)peers::DigestBloom::Decode(s);
  (void)push::ParseTagValue(s);
  push::ReplicationRecord r = push::ParseReplication(s);
  if (!r.deleted && push::ParseReplication(push::EncodeReplication(r)).created != r.created)
    __builtin_trap();
  push::SyncReport report, again_report;
  if (push::ParseSyncReport(s, &report) &&
      (!push::ParseSyncReport(push::EncodeSyncReport(report), &again_report) ||
       !(again_report == report)))
    __builtin_trap();
  auto m = peers::DecodeMessage(s);
  if (!m.ok()) return 0;
  // Round trip: what we decode, we can encode and decode again to the same.
  auto again = peers::DecodeMessage(peers::EncodeMessage(*m));
  if (!again.ok() || again->members.size() != m->members.size() ||
      again->tags.size() != m->tags.size() || again->revocations.size() != m->revocations.size())
    __builtin_trap();
  peers::GossipOptions o;
  o.max_members = 64;
  static const auto signer = std::make_shared<peers::Ed25519Signer>(peers::Ed25519Signer::Seed{7});
  peers::GossipNode node(
      {"self", "eu", "http://10.0.0.1:5000", peers::MemberState::kAlive, 1'700'000'000}, {}, o, 1,
      signer);
  node.Receive(*m, 1000, 1'700'000'000'000);
  node.Tick(2000);
  (void)node.TakeOutbox();
  if (node.members().size() > 64) __builtin_trap();
  if (node.self().state != peers::MemberState::kAlive) __builtin_trap();  // it refutes, always
  return 0;
}
