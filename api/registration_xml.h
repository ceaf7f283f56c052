#pragma once

// Azure's registrations (the model before installations) in their Atom XML form
// (../shared/reference/notification-hubs-api.md §1.3). pushhub stores a registration as an
// installation of kind kRegistration: a native registration is one without templates, a template
// registration one with exactly one template, named by its TemplateName (or, without one, by the
// registration id, which then never shows as a TemplateName).
//
// Descriptions understood: Apple, Gcm, FcmV1 and Windows, native and template. Gcm registrations
// are stored as FCM v1 ones (Google retired GCM) and read back as FcmV1RegistrationDescription.

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "storage/installation.h"

namespace pushhub::api {

// Parses an Atom <entry> whose <content> holds one *RegistrationDescription (namespace prefixes
// ignored; a bare description is accepted too). The result has kind kRegistration and the id the
// body names (RegistrationId), possibly empty; the caller sets the id of the URL. Not yet
// validated beyond the XML shape. Errors name the element.
std::expected<storage::Installation, std::string> parseRegistrationXml(std::string_view xml);

// The Atom entry of one stored registration. `base_url` is "https://host/hub" (no slash after).
std::string registrationEntryXml(const storage::Installation& registration,
                                 std::string_view base_url);

// An Atom feed of registrations, as the list routes answer. `self` is the request's URL.
std::string registrationFeedXml(const std::vector<storage::Installation>& registrations,
                                std::string_view base_url, std::string_view self);

// The listing filter the SDKs build for "registrations of this channel":
// "ChannelUri eq '…'", "DeviceToken eq '…'", "GcmRegistrationId eq '…'",
// "FcmV1RegistrationId eq '…'" (quotes doubled inside, as OData writes them).
struct ChannelFilter {
  storage::Platform platform = storage::Platform::kApns;
  std::string handle;
};
std::expected<ChannelFilter, std::string> parseChannelFilter(std::string_view filter);

}  // namespace pushhub::api
