#pragma once

#include <spdlog/formatter.h>
#include <spdlog/logger.h>

#include <memory>
#include <optional>
#include <string_view>

namespace pushhub {

enum class LogFormat { kText, kJson };

std::optional<LogFormat> parseLogFormat(std::string_view name);
std::optional<spdlog::level::level_enum> parseLogLevel(std::string_view name);

// Sends every pushhub logger to standard error in `format` at `level`. May be called again (the
// server calls it once with the command-line defaults, then with the loaded configuration);
// loggers created before and after follow the latest call.
void configureLogging(LogFormat format, spdlog::level::level_enum level);

// The logger of one module ("api", "storage", "hub", …), created on first use. Every line it
// writes carries the module name.
std::shared_ptr<spdlog::logger> moduleLogger(std::string_view module);

// Formats one record as a single JSON line:
// {"ts":"2026-11-25T09:30:00.123456Z","level":"info","logger":"api","msg":"…"}
class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace pushhub
