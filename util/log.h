// Logging: one line per event on stderr, "TIME LEVEL message".
//
// Thread-safe (each line is one write(2)). journald adds its own timestamps,
// but the tests read stderr directly, so lines carry UTC time in ms.
// Never log credentials or tokens.
#pragma once

#include <cstdarg>

namespace util {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

void SetLogLevel(LogLevel level);
bool ParseLogLevel(const char* name, LogLevel* level);
void Log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace util

#define LOG_DEBUG(...) ::util::Log(::util::LogLevel::kDebug, __VA_ARGS__)
#define LOG_INFO(...) ::util::Log(::util::LogLevel::kInfo, __VA_ARGS__)
#define LOG_WARN(...) ::util::Log(::util::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) ::util::Log(::util::LogLevel::kError, __VA_ARGS__)
