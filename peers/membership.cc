#include "peers/membership.h"

#include <xxhash.h>

namespace peers {

const char* MemberStateName(MemberState s) {
  switch (s) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kDead:
      return "dead";
    case MemberState::kLeft:
      return "left";
  }
  return "?";
}

bool ParseMemberState(const std::string& text, MemberState* out) {
  for (MemberState s :
       {MemberState::kAlive, MemberState::kSuspect, MemberState::kDead, MemberState::kLeft}) {
    if (text == MemberStateName(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}

uint32_t MemberBucketOf(const std::string& name) {
  return static_cast<uint32_t>(XXH3_64bits(name.data(), name.size()) % kMemberBuckets);
}

uint64_t MemberRecordHash(const MemberRecord& r) {
  std::string s = r.name + '\0' + std::to_string(r.incarnation) + '\0' + MemberStateName(r.state);
  return XXH3_64bits(s.data(), s.size());
}

}  // namespace peers
