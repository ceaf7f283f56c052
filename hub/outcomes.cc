#include "hub/outcomes.h"

#include "common/json.h"

#include <fmt/format.h>

#include "common/xml.h"

namespace pushhub::hub {
namespace {

std::string element(std::string_view name, std::string_view text) {
  std::string out = fmt::format("<{}>", name);
  appendXmlEscaped(out, text);
  out += fmt::format("</{}>", name);
  return out;
}

}  // namespace

std::string_view stateName(NotificationState state) {
  switch (state) {
    case NotificationState::kEnqueued: return "Enqueued";
    case NotificationState::kProcessing: return "Processing";
    case NotificationState::kCompleted: return "Completed";
    case NotificationState::kNoTargetFound: return "NoTargetFound";
    case NotificationState::kAbandoned: return "Abandoned";
    case NotificationState::kCanceled: return "Canceled";
    case NotificationState::kScheduled: return "Scheduled";
  }
  return "Unknown";
}

uint64_t OutcomeTally::total(storage::Platform platform) const {
  uint64_t n = 0;
  for (size_t o = 0; o < connectors::kPnsOutcomeCount; ++o) {
    n += counts_[static_cast<size_t>(platform)][o].load(std::memory_order_relaxed);
  }
  return n;
}

uint64_t OutcomeTally::total() const {
  uint64_t n = 0;
  for (size_t p = 0; p < storage::kPlatformCount; ++p) {
    n += total(static_cast<storage::Platform>(p));
  }
  return n;
}

std::string notificationDetailsXml(const NotificationDetails& details, const OutcomeTally& tally) {
  std::string out =
      R"(<NotificationDetails xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">)";
  out += element("NotificationId", details.id);
  out += element("Location", details.location);
  out += element("State", stateName(details.state));
  out += element("EnqueueTime", formatIso8601(details.enqueue_time));
  if (details.start_time != 0) out += element("StartTime", formatIso8601(details.start_time));
  if (details.end_time != 0) out += element("EndTime", formatIso8601(details.end_time));
  out += element("NotificationBody", details.body);
  std::string platforms;
  for (const auto& p : details.target_platforms) {
    if (!platforms.empty()) platforms += ',';
    platforms += p;
  }
  out += element("TargetPlatforms", platforms);
  const auto counts = [&](storage::Platform platform, std::string_view container) {
    if (tally.total(platform) == 0) return;
    out += fmt::format("<{}>", container);
    for (size_t o = 0; o < connectors::kPnsOutcomeCount; ++o) {
      const auto outcome = static_cast<connectors::PnsOutcome>(o);
      const uint64_t n = tally.count(platform, outcome);
      if (n == 0) continue;
      out += fmt::format("<Outcome><Name>{}</Name><Count>{}</Count></Outcome>",
                         connectors::outcomeName(outcome), n);
    }
    out += fmt::format("</{}>", container);
  };
  counts(storage::Platform::kApns, "ApnsOutcomeCounts");
  counts(storage::Platform::kFcmV1, "FcmV1OutcomeCounts");
  counts(storage::Platform::kFcmV1, "GcmOutcomeCounts");
  counts(storage::Platform::kWns, "WnsOutcomeCounts");
  out += "</NotificationDetails>";
  return out;
}

std::string outcomeCountsJson(const OutcomeTally& tally) {
  std::string out = "{";
  for (size_t p = 0; p < storage::kPlatformCount; ++p) {
    const auto platform = static_cast<storage::Platform>(p);
    if (tally.total(platform) == 0) continue;
    if (out.size() > 1) out += ',';
    out += fmt::format("{}:{{", jsonQuoted(storage::platformName(platform)));
    bool first = true;
    for (size_t o = 0; o < connectors::kPnsOutcomeCount; ++o) {
      const auto outcome = static_cast<connectors::PnsOutcome>(o);
      const uint64_t n = tally.count(platform, outcome);
      if (n == 0) continue;
      out +=
          fmt::format("{}{}:{}", first ? "" : ",", jsonQuoted(connectors::outcomeName(outcome)), n);
      first = false;
    }
    out += '}';
  }
  out += '}';
  return out;
}

std::string notificationDetailsJson(const NotificationDetails& details, const OutcomeTally& tally) {
  std::string platforms;
  for (const auto& p : details.target_platforms) {
    platforms += (platforms.empty() ? "" : ",") + jsonQuoted(p);
  }
  const auto time = [](UnixMillis t) {
    return t == 0 ? std::string("null") : jsonQuoted(formatIso8601(t));
  };
  return fmt::format(
      R"({{"notificationId":{},"location":{},"state":{},"enqueueTime":{},"startTime":{},)"
      R"("endTime":{},"targetPlatforms":[{}],"counts":{},"resends":{}}})",
      jsonQuoted(details.id), jsonQuoted(details.location), jsonQuoted(stateName(details.state)),
      time(details.enqueue_time), time(details.start_time), time(details.end_time), platforms,
      outcomeCountsJson(tally), details.resends);
}

}  // namespace pushhub::hub
