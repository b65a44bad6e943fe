// Where the well-known cloud regions are, for maps: Azure ("japaneast"),
// AWS ("ap-northeast-1") and GCP ("asia-northeast1") region names, each at
// the city its data centres are near (to a tenth of a degree or so; maps
// only, never routing: routing goes by measured RTT). Pure.
#pragma once

#include <optional>
#include <string_view>

namespace peers {

struct LatLon {
  double latitude, longitude;
};

// The location of a well-known region name, exactly as the provider spells it.
std::optional<LatLon> KnownRegionLocation(std::string_view region);

}  // namespace peers
