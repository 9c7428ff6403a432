#include "sweep/local_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "core/files.h"
#include "core/process_settings.h"
#include "core/progress.h"
#include "sweep/run_slot.h"

namespace adze {
namespace {

// The child's one-line error in the log after byte `from`: its first "adze: ..." line (an error that lists
// several layers goes on over more lines), else its last non-empty line.
std::string error_line(const std::string& log, int64_t from) {
  std::ifstream in(log);
  in.seekg(from);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.rfind("adze: ", 0) == 0) return line;
    if (!line.empty()) last = line;
  }
  return last;
}

std::string describe_failure(const Attempt& a, const std::string& log_line, double timeout_s) {
  if (a.timed_out) {
    char limit[32];
    std::snprintf(limit, sizeof limit, "%g", timeout_s);
    return std::string("timed out after ") + limit + " s";
  }
  if (WIFSIGNALED(a.status))
    return std::string("crashed (") + strsignal(WTERMSIG(a.status)) + ")" + (log_line.empty() ? "" : ": " + log_line);
  return log_line.empty() ? "exited with code " + std::to_string(WEXITSTATUS(a.status)) : log_line;
}

// A result a child wrote completely (it is written atomically), or null.
nlohmann::ordered_json finished_result(const std::string& run_dir) {
  const std::string path = run_dir + "/result.json";
  if (!std::filesystem::exists(path)) return nullptr;
  try {
    return nlohmann::ordered_json::parse(read_file_text(path));
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace

double monotonic_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string run_directory(const std::string& dir, const std::string& id) { return dir + "/runs/" + id; }

ChildRun::ChildRun(const std::string& dir, const std::string& id, const ExecutorOptions& o)
    : timeout_s_(o.timeout_s), start_(monotonic_s()) {
  const std::string run_dir = run_directory(dir, id), log = run_dir + "/log.txt";
  std::filesystem::create_directories(run_dir);
  attempt_.log_from = std::filesystem::exists(log) ? static_cast<int64_t>(std::filesystem::file_size(log)) : 0;
  std::vector<std::string> argv = o.child_command;
  argv.push_back(id);
  const pid_t parent = getpid();
  // The run binds its own threads, on the CPUs this process was given (restored here after the fork; the child
  // execs or exits inside this scope, so never restores).
  const ChildCpus cpus;
  pid_ = fork();
  if (pid_ < 0) throw Error(ErrorKind::kIo, std::string("failed to start a sweep run: fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // the parent died before prctl took effect
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::fprintf(stderr, "failed to start %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  exit_fd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));  // Linux 5.3 and later; -1 before
}

ChildRun::~ChildRun() {
  if (exit_fd_ >= 0) ::close(exit_fd_);
}

bool ChildRun::reaped() { return waitpid(pid_, &attempt_.status, WNOHANG) == pid_; }

bool ChildRun::ended() {
  pid_ = -1;
  attempt_.wall_s = monotonic_s() - start_;
  return true;
}

bool ChildRun::poll(double wait_s) {
  if (pid_ < 0) return true;
  if (reaped()) return ended();
  const double left = timeout_s_ > 0 ? timeout_s_ - (monotonic_s() - start_) : wait_s;
  if (left <= 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &attempt_.status, 0);
    attempt_.timed_out = true;
    return ended();
  }
  const double wait = std::min(wait_s, left);
  if (exit_fd_ >= 0) {
    pollfd child_exit{exit_fd_, POLLIN, 0};
    ::poll(&child_exit, 1, static_cast<int>(std::ceil(wait * 1000)));
    return reaped() ? ended() : false;
  }
  for (double waited = 0; waited < wait; waited += 0.001) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (reaped()) return ended();
  }
  return false;
}

SweepProgress::SweepProgress(SweepStore& store, std::string dir, const ExecutorOptions& options)
    : store_(store), dir_(std::move(dir)), options_(options) {
  const auto c = store.counts();
  finished_ = c.at("done") + c.at("failed");
  bar_ = std::make_unique<ProgressBar>("sweep", finished_ + c.at("pending") + c.at("running"), options.progress);
  bar_->update(finished_, status());
}

SweepProgress::~SweepProgress() = default;

std::string SweepProgress::status() const {
  const auto c = store_.counts();
  std::string s = "done " + std::to_string(c.at("done")) + ", failed " + std::to_string(c.at("failed")) + ", pending " +
                  std::to_string(c.at("pending"));
  if (timed_ > 0 && c.at("pending") > 0)
    s += ", ~" + std::to_string(static_cast<int64_t>(std::ceil(wall_ / timed_ * c.at("pending")))) + " s left";
  return s;
}

std::optional<StoredRun> SweepProgress::next(const std::string& host, int64_t pid) {
  while (auto run = store_.claim(host, pid)) {
    const auto result = finished_result(run_directory(dir_, run->id));
    if (result.is_null()) return run;
    store_.finish(run->id, result, run->wall_s);  // finished before the sweep that ran it died
    ++summary_.adopted;
    ++summary_.done;
    bar_->update(++finished_, status());
  }
  return std::nullopt;
}

void SweepProgress::record(const StoredRun& run, const Attempt& a) {
  ++summary_.attempts;
  const std::string run_dir = run_directory(dir_, run.id);
  const auto result = finished_result(run_dir);
  if (!a.timed_out && WIFEXITED(a.status) && WEXITSTATUS(a.status) == 0 && !result.is_null()) {
    store_.finish(run.id, result, a.wall_s);
    ++summary_.done;
    wall_ += a.wall_s;
    ++timed_;
    bar_->update(++finished_, status());
    return;
  }
  const bool retry = run.attempts <= options_.retries;
  store_.fail(run.id, describe_failure(a, error_line(run_dir + "/log.txt", a.log_from), options_.timeout_s), a.wall_s,
              retry);
  if (!retry) {
    ++summary_.failed;
    bar_->update(++finished_, status());
  }
}

void SweepProgress::heartbeat(const std::vector<std::string>& ids) {
  const double now = monotonic_s();
  if (now - last_beat_ < options_.heartbeat_s) return;
  for (const std::string& id : ids) store_.heartbeat(id);
  last_beat_ = now;
}

void SweepProgress::finish() { bar_->finish(status()); }

ExecutorSummary run_pending(SweepStore& store, const std::string& dir, const ExecutorOptions& o) {
  SweepProgress progress(store, dir, o);
  const std::string host = host_name();
  RunSlot slot(o);
  while (auto run = progress.next(host, getpid())) {
    slot.start(dir, run->id);
    progress.record(*run, slot.wait([&] { progress.heartbeat({run->id}); }));
  }
  progress.finish();
  return progress.summary();
}

}  // namespace adze
