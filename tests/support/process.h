#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pushhub::testing {

// A child process started from a real binary, with its stdout and stderr captured together, for
// integration tests. It leads its own process group, which is killed (SIGKILL) on destruction.
class ChildProcess {
 public:
  // `environment` entries are added to (or override) this process's environment.
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& environment = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Reads output until a line contains `needle`; returns that line, or nullopt on timeout or if
  // the process closed its output first.
  std::optional<std::string> waitForLine(const std::string& needle,
                                         std::chrono::milliseconds timeout);
  // Everything read so far.
  const std::string& output() const { return output_; }

  void sendSignal(int signal);
  // The child and everything it started (it leads its own process group), as a terminal's
  // Ctrl-C would.
  void signalGroup(int signal);
  // Waits for the exit; returns the exit code (128 + signal when killed), or nullopt on timeout.
  std::optional<int> waitForExit(std::chrono::milliseconds timeout);
  // Reads the rest of the output until the process closes it (or `timeout`).
  void drainOutput(std::chrono::milliseconds timeout);

 private:
  bool readSome(std::chrono::milliseconds timeout);

  int pid_ = -1;
  int output_fd_ = -1;
  std::string output_;
  size_t scanned_ = 0;
  std::optional<int> exit_code_;
};

}  // namespace pushhub::testing
