// What an own-registry tag update says besides its digest (the signed
// peers::TagVersion::value): the nodes that hold the image (the node that
// took the push and its replicas: where another region fetches it before
// any copy of its own exists), or that the tag was deleted (a tombstone,
// which wins over older versions like any update and is kept so that
// anti-entropy never brings the tag back).
//
// Pure; never throws. Encoded as a small JSON object.
#pragma once

#include <string>
#include <vector>

namespace push {

// Content deleted fleet-wide (a blob or manifest DELETE by digest) is a
// fleet record too: {kDeletedContent, <registry name>, <digest>}, its value
// an OwnTagValue that says deleted, or not (pushed again since). Last
// writer wins, as for tags; the registry field starts with '/', which no
// registry host can.
inline constexpr const char* kDeletedContent = "/deleted";

struct OwnTagValue {
  bool deleted = false;
  std::vector<std::string> holders;
};

std::string EncodeTagValue(const OwnTagValue& v);
// An unreadable value reads as a live tag with no known holders.
OwnTagValue ParseTagValue(const std::string& text);

}  // namespace push
