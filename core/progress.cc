#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace adze {

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total > 0 ? total : 1),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (enabled_ && !finished_ && tty_) std::fputc('\n', stderr);
}

void ProgressBar::update(int64_t done, const std::string& status) {
  done_ = done;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_draw_ = now;
    draw(status, false);
  } else {
    const int decile = static_cast<int>(10 * done_ / total_);
    if (decile == last_decile_) return;
    last_decile_ = decile;
    draw(status, true);
  }
}

void ProgressBar::finish(const std::string& status) {
  if (!enabled_ || finished_) return;
  finished_ = true;
  done_ = total_;
  if (!tty_ && last_decile_ == 10 && status.empty()) return;  // the 100% line is already in the log
  draw(status, true);
}

void ProgressBar::draw(const std::string& status, bool final_line) {
  const double fraction = static_cast<double>(done_) / static_cast<double>(total_);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int width = 28;
  const int filled = static_cast<int>(fraction * width);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "%s%-22s [%s] %3d%% %6.1fs %s%s", tty_ ? "\r\033[K" : "", label_.c_str(), bar.c_str(),
               static_cast<int>(100 * fraction), seconds, status.c_str(), (final_line || !tty_) ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace adze
