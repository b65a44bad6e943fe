#include "peers/membership.h"

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

}  // namespace peers
