// File: broker/http/dashboard_assets.h
// -----------------------------------------------------------------------------
//
// The dashboard's files (broker/http/dashboard/: HTML, CSS, JavaScript),
// embedded in the binary at build time by dashboard/embed_assets, so the
// dashboard needs nothing from anywhere else.
//
// Example:
//
//   if (const DashboardAsset* asset = FindDashboardAsset("/")) {
//     Respond(200, asset->content_type, asset->body);
//   }

#ifndef MANIFOLD_BROKER_HTTP_DASHBOARD_ASSETS_H_
#define MANIFOLD_BROKER_HTTP_DASHBOARD_ASSETS_H_

#include "absl/strings/string_view.h"

namespace manifold {

struct DashboardAsset {
  absl::string_view path;  // the URL path: "/", "/dashboard.js"
  absl::string_view content_type;
  absl::string_view body;
};

// The asset served at `path`, or nullptr. The result lives as long as the
// program.
const DashboardAsset* FindDashboardAsset(absl::string_view path);

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_DASHBOARD_ASSETS_H_
