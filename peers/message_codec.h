// The wire form of gossip messages: one JSON object per HTTP request body
// (docs/gossip.md, "Transport"). Pure.
//
//   {"pv":1,"type":"ping","from":"n1","seq":7,"target":"","sv":3,
//    "members":[{"name":..,"region":..,"url":..,"state":"alive","inc":12,
//                "key":"hex64","sig":"hex128"}],
//    "tags":[{"registry":..,"repository":..,"tag":..,"digest":"sha256:..",
//             "wall":1700000000000,"logical":0,"origin":"n1","sig":"hex128"}],
//    "revocations":[{"name":..,"key":"hex64","by":..,"sig":"hex128"}],
//    "summaries":["hex16",..],
//    "ms":["hex16" x 64]}          (sync and sync reply: membership by bucket)
#pragma once

#include <string>

#include "peers/gossip_node.h"
#include "util/status.h"

namespace peers {

std::string EncodeMessage(const Message& m);
// Fields it does not know are ignored; "pv" absent is version 1, and the
// version is the caller's to check (peers/protocol.h). Errors:
// InvalidArgument naming the first malformed field. Never throws.
util::Result<Message> DecodeMessage(const std::string& body);
// One tag update alone, as it travels in messages, with "pv" (how a node
// keeps fleet state across restarts). Errors: InvalidArgument, also for a
// version this node does not speak.
std::string EncodeTagUpdate(const TagUpdate& u);
util::Result<TagUpdate> DecodeTagUpdate(const std::string& text);

}  // namespace peers
