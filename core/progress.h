// A progress bar on stderr for long work (training, evaluation, calibration).
//
// On a terminal it redraws one line; otherwise (logs, CI) it prints a line at every 10% so that logs stay
// short. Disabled bars print nothing, which is what --quiet and --json select.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace adze {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled);
  ~ProgressBar();
  /// Sets the number of finished units and an optional status text ("loss 0.412").
  void update(int64_t done, const std::string& status = "");
  /// Draws the final state and ends the line.
  void finish(const std::string& status = "");

 private:
  void draw(const std::string& status, bool final_line);
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace adze
