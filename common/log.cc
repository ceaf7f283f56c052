#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <mutex>
#include <string>

#include "common/json.h"

namespace pushhub {
namespace {

// All module loggers share one sink; its formatter and the level are switched under this lock.
struct LoggingState {
  std::mutex mutex;
  std::shared_ptr<spdlog::sinks::stderr_sink_mt> sink =
      std::make_shared<spdlog::sinks::stderr_sink_mt>();
  spdlog::level::level_enum level = spdlog::level::info;
  LogFormat format = LogFormat::kText;
  bool formatter_set = false;
};

LoggingState& state() {
  static LoggingState s;
  return s;
}

constexpr std::string_view kTextPattern = "%Y-%m-%dT%H:%M:%S.%fZ %l [%n] %v";

void applyFormat(spdlog::sinks::sink& sink, LogFormat format) {
  if (format == LogFormat::kJson) {
    sink.set_formatter(std::make_unique<JsonLogFormatter>());
  } else {
    sink.set_formatter(std::make_unique<spdlog::pattern_formatter>(std::string(kTextPattern),
                                                                   spdlog::pattern_time_type::utc));
  }
}

}  // namespace

std::optional<LogFormat> parseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

std::optional<spdlog::level::level_enum> parseLogLevel(std::string_view name) {
  using spdlog::level::level_enum;
  if (name == "trace") return level_enum::trace;
  if (name == "debug") return level_enum::debug;
  if (name == "info") return level_enum::info;
  if (name == "warn") return level_enum::warn;
  if (name == "error") return level_enum::err;
  if (name == "off") return level_enum::off;
  return std::nullopt;
}

void configureLogging(LogFormat format, spdlog::level::level_enum level) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.level = level;
  s.format = format;
  applyFormat(*s.sink, format);
  s.formatter_set = true;
  spdlog::apply_all(
      [level](const std::shared_ptr<spdlog::logger>& logger) { logger->set_level(level); });
}

std::shared_ptr<spdlog::logger> moduleLogger(std::string_view module) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  const std::string name(module);
  if (auto existing = spdlog::get(name)) return existing;
  if (!s.formatter_set) {
    // configureLogging() was never called (tests, tools): give the sink the default format.
    applyFormat(*s.sink, s.format);
    s.formatter_set = true;
  }
  auto logger = std::make_shared<spdlog::logger>(name, s.sink);
  logger->set_level(s.level);
  logger->flush_on(spdlog::level::warn);
  spdlog::register_logger(logger);
  return logger;
}

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  const auto since_epoch = msg.time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - seconds).count();
  const std::time_t t = seconds.count();
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[40];
  const size_t n = std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);

  std::string line;
  line.reserve(96 + msg.payload.size());
  line += "{\"ts\":\"";
  line.append(ts, n);
  line += fmt::format(".{:06d}Z\",\"level\":\"", micros);
  const auto level = spdlog::level::to_string_view(msg.level);
  line.append(level.data(), level.size());
  line += "\",\"logger\":";
  line += jsonQuoted(std::string_view(msg.logger_name.data(), msg.logger_name.size()));
  line += ",\"msg\":";
  line += jsonQuoted(std::string_view(msg.payload.data(), msg.payload.size()));
  line += "}\n";
  dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

}  // namespace pushhub
