#include "peers/region_locations.h"

#include <algorithm>
#include <iterator>

namespace peers {

namespace {

struct Known {
  std::string_view name;
  LatLon at;
};

// Sorted by name (checked below, at compile time), found by binary search.
constexpr Known kRegions[] = {
    {"af-south-1", {-33.9, 18.4}},               // AWS Cape Town
    {"africa-south1", {-26.2, 28.0}},            // GCP Johannesburg
    {"ap-east-1", {22.3, 114.2}},                // AWS Hong Kong
    {"ap-northeast-1", {35.7, 139.7}},           // AWS Tokyo
    {"ap-northeast-2", {37.6, 127.0}},           // AWS Seoul
    {"ap-northeast-3", {34.7, 135.5}},           // AWS Osaka
    {"ap-south-1", {19.1, 72.9}},                // AWS Mumbai
    {"ap-southeast-1", {1.4, 103.8}},            // AWS Singapore
    {"ap-southeast-2", {-33.9, 151.2}},          // AWS Sydney
    {"ap-southeast-3", {-6.2, 106.8}},           // AWS Jakarta
    {"asia-east1", {24.1, 120.5}},               // GCP Taiwan
    {"asia-east2", {22.3, 114.2}},               // GCP Hong Kong
    {"asia-northeast1", {35.7, 139.7}},          // GCP Tokyo
    {"asia-northeast2", {34.7, 135.5}},          // GCP Osaka
    {"asia-northeast3", {37.6, 127.0}},          // GCP Seoul
    {"asia-south1", {19.1, 72.9}},               // GCP Mumbai
    {"asia-south2", {28.6, 77.2}},               // GCP Delhi
    {"asia-southeast1", {1.4, 103.8}},           // GCP Singapore
    {"asia-southeast2", {-6.2, 106.8}},          // GCP Jakarta
    {"australia-southeast1", {-33.9, 151.2}},    // GCP Sydney
    {"australia-southeast2", {-37.8, 145.0}},    // GCP Melbourne
    {"australiacentral", {-35.3, 149.1}},        // Azure Canberra
    {"australiaeast", {-33.9, 151.2}},           // Azure New South Wales
    {"australiasoutheast", {-37.8, 145.0}},      // Azure Victoria
    {"brazilsouth", {-23.6, -46.6}},             // Azure Sao Paulo
    {"ca-central-1", {45.5, -73.6}},             // AWS Montreal
    {"canadacentral", {43.7, -79.4}},            // Azure Toronto
    {"canadaeast", {46.8, -71.2}},               // Azure Quebec City
    {"centralindia", {18.6, 73.9}},              // Azure Pune
    {"centralus", {41.6, -93.6}},                // Azure Iowa
    {"eastasia", {22.3, 114.2}},                 // Azure Hong Kong
    {"eastus", {37.4, -79.8}},                   // Azure Virginia
    {"eastus2", {36.7, -78.4}},                  // Azure Virginia
    {"eu-central-1", {50.1, 8.7}},               // AWS Frankfurt
    {"eu-central-2", {47.4, 8.5}},               // AWS Zurich
    {"eu-north-1", {59.3, 18.1}},                // AWS Stockholm
    {"eu-south-1", {45.5, 9.2}},                 // AWS Milan
    {"eu-south-2", {41.7, -0.9}},                // AWS Aragon
    {"eu-west-1", {53.3, -6.3}},                 // AWS Ireland
    {"eu-west-2", {51.5, -0.1}},                 // AWS London
    {"eu-west-3", {48.9, 2.4}},                  // AWS Paris
    {"europe-central2", {52.2, 21.0}},           // GCP Warsaw
    {"europe-north1", {60.6, 27.2}},             // GCP Finland
    {"europe-southwest1", {40.4, -3.7}},         // GCP Madrid
    {"europe-west1", {50.4, 3.8}},               // GCP Belgium
    {"europe-west2", {51.5, -0.1}},              // GCP London
    {"europe-west3", {50.1, 8.7}},               // GCP Frankfurt
    {"europe-west4", {53.4, 6.8}},               // GCP Netherlands
    {"europe-west6", {47.4, 8.5}},               // GCP Zurich
    {"europe-west8", {45.5, 9.2}},               // GCP Milan
    {"europe-west9", {48.9, 2.4}},               // GCP Paris
    {"francecentral", {48.9, 2.4}},              // Azure Paris
    {"germanywestcentral", {50.1, 8.7}},         // Azure Frankfurt
    {"il-central-1", {32.1, 34.8}},              // AWS Tel Aviv
    {"israelcentral", {32.1, 34.8}},             // Azure Israel
    {"italynorth", {45.5, 9.2}},                 // Azure Milan
    {"japaneast", {35.7, 139.8}},                // Azure Tokyo
    {"japanwest", {34.7, 135.5}},                // Azure Osaka
    {"koreacentral", {37.6, 127.0}},             // Azure Seoul
    {"koreasouth", {35.2, 129.1}},               // Azure Busan
    {"me-central-1", {25.2, 55.3}},              // AWS UAE
    {"me-central1", {25.3, 51.5}},               // GCP Doha
    {"me-south-1", {26.1, 50.6}},                // AWS Bahrain
    {"me-west1", {32.1, 34.8}},                  // GCP Tel Aviv
    {"northamerica-northeast1", {45.5, -73.6}},  // GCP Montreal
    {"northamerica-northeast2", {43.7, -79.4}},  // GCP Toronto
    {"northcentralus", {41.9, -87.6}},           // Azure Illinois
    {"northeurope", {53.3, -6.3}},               // Azure Ireland
    {"norwayeast", {59.9, 10.8}},                // Azure Oslo
    {"polandcentral", {52.2, 21.0}},             // Azure Warsaw
    {"qatarcentral", {25.3, 51.5}},              // Azure Doha
    {"sa-east-1", {-23.6, -46.6}},               // AWS Sao Paulo
    {"southafricanorth", {-25.7, 28.2}},         // Azure Johannesburg
    {"southamerica-east1", {-23.6, -46.6}},      // GCP Sao Paulo
    {"southamerica-west1", {-33.4, -70.7}},      // GCP Santiago
    {"southcentralus", {29.4, -98.5}},           // Azure Texas
    {"southeastasia", {1.3, 103.8}},             // Azure Singapore
    {"southindia", {13.0, 80.2}},                // Azure Chennai
    {"swedencentral", {60.7, 17.1}},             // Azure Gavle
    {"switzerlandnorth", {47.5, 8.6}},           // Azure Zurich
    {"uaenorth", {25.3, 55.3}},                  // Azure Dubai
    {"uksouth", {51.5, -0.1}},                   // Azure London
    {"ukwest", {51.5, -3.2}},                    // Azure Cardiff
    {"us-central1", {41.3, -95.9}},              // GCP Iowa
    {"us-east-1", {38.9, -77.4}},                // AWS N. Virginia
    {"us-east-2", {40.0, -83.0}},                // AWS Ohio
    {"us-east1", {33.2, -80.0}},                 // GCP South Carolina
    {"us-east4", {39.0, -77.5}},                 // GCP N. Virginia
    {"us-east5", {40.0, -83.0}},                 // GCP Columbus
    {"us-south1", {32.8, -96.8}},                // GCP Dallas
    {"us-west-1", {37.4, -122.0}},               // AWS N. California
    {"us-west-2", {45.8, -119.7}},               // AWS Oregon
    {"us-west1", {45.6, -121.2}},                // GCP Oregon
    {"us-west2", {34.1, -118.2}},                // GCP Los Angeles
    {"us-west3", {40.8, -111.9}},                // GCP Salt Lake City
    {"us-west4", {36.2, -115.1}},                // GCP Las Vegas
    {"westcentralus", {41.1, -104.8}},           // Azure Wyoming
    {"westeurope", {52.4, 4.9}},                 // Azure Netherlands
    {"westindia", {19.1, 72.9}},                 // Azure Mumbai
    {"westus", {37.8, -122.4}},                  // Azure California
    {"westus2", {47.2, -119.9}},                 // Azure Washington
    {"westus3", {33.4, -112.1}},                 // Azure Arizona
};

static_assert(std::is_sorted(std::begin(kRegions), std::end(kRegions),
                             [](const Known& a, const Known& b) { return a.name < b.name; }));

}  // namespace

std::optional<LatLon> KnownRegionLocation(std::string_view region) {
  auto it = std::lower_bound(std::begin(kRegions), std::end(kRegions), region,
                             [](const Known& k, std::string_view r) { return k.name < r; });
  if (it == std::end(kRegions) || it->name != region) return std::nullopt;
  return it->at;
}

}  // namespace peers
