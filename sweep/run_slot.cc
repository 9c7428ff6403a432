#include "sweep/run_slot.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "core/process_settings.h"

namespace adze {
namespace {

// The fd on which a worker reads run ids and answers (`adze sweep serve`).
constexpr int kWorkerFd = 3;

}  // namespace

RunSlot::RunSlot(const ExecutorOptions& options) : options_(options) {}

RunSlot::~RunSlot() { stop_worker(false); }

void RunSlot::spawn() {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    throw Error(ErrorKind::kIo, std::string("failed to start a sweep worker: socketpair: ") + std::strerror(errno));
  const pid_t parent = getpid();
  const ChildCpus cpus;  // the worker binds its own threads on this process's CPUs (as ChildRun's child does)
  pid_ = fork();
  if (pid_ < 0) {
    ::close(pair[0]), ::close(pair[1]);
    throw Error(ErrorKind::kIo, std::string("failed to start a sweep worker: fork: ") + std::strerror(errno));
  }
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // the parent died before prctl took effect
    // Its end onto fd 3 (dup2 clears close-on-exec; through a higher fd first, in case it is fd 3 already);
    // its own output goes nowhere between runs, each run's to its log.
    const int high = fcntl(pair[1], F_DUPFD, 10);
    if (high < 0 || dup2(high, kWorkerFd) < 0) _exit(126);
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDOUT_FILENO), dup2(null, STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : options_.worker_command) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  ::close(pair[1]);
  socket_ = pair[0];
}

int RunSlot::stop_worker(bool kill) {
  if (pid_ < 0) return 0;
  ::close(socket_);  // the worker exits at the end of its input
  socket_ = -1;
  if (kill) ::kill(pid_, SIGKILL);
  int status = 0;
  for (int waited_ms = 0; waitpid(pid_, &status, WNOHANG) == 0; ++waited_ms) {
    if (waited_ms == 2000) ::kill(pid_, SIGKILL);  // an idle worker exits at once; one that lingers is stuck
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  pid_ = -1;
  return status;
}

bool RunSlot::send(const std::string& line) {
  for (std::size_t sent = 0; sent < line.size();) {
    const ssize_t n = ::send(socket_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

void RunSlot::start(const std::string& dir, const std::string& id) {
  if (options_.worker_command.empty()) {
    child_.emplace(dir, id, options_);
    return;
  }
  const std::string run_dir = run_directory(dir, id), log = run_dir + "/log.txt";
  std::filesystem::create_directories(run_dir);
  attempt_ = Attempt();
  attempt_.log_from = std::filesystem::exists(log) ? static_cast<int64_t>(std::filesystem::file_size(log)) : 0;
  answer_.clear();
  start_ = monotonic_s();
  running_ = true;
  // A worker that ended while idle (its socket closed) is started again, once.
  for (int tries = 0; tries < 2; ++tries) {
    if (pid_ < 0) spawn();
    if (send(id + "\n")) return;
    stop_worker(true);
  }
  throw Error(ErrorKind::kIo, "failed to hand run " + id + " to a sweep worker: " + std::strerror(errno));
}

void RunSlot::end_attempt() {
  running_ = false;
  attempt_.wall_s = monotonic_s() - start_;
}

bool RunSlot::poll(double wait_s) {
  if (child_) {
    if (!child_->poll(wait_s)) return false;
    attempt_ = child_->attempt();
    child_.reset();
    return true;
  }
  if (!running_) return true;
  const double left = options_.timeout_s > 0 ? options_.timeout_s - (monotonic_s() - start_) : wait_s;
  if (left <= 0) {
    attempt_.status = stop_worker(true);
    attempt_.timed_out = true;
    end_attempt();
    return true;
  }
  pollfd answer{socket_, POLLIN, 0};
  if (::poll(&answer, 1, static_cast<int>(std::ceil(std::min(wait_s, left) * 1000))) <= 0) return false;
  char buffer[256];
  const ssize_t n = ::recv(socket_, buffer, sizeof buffer, 0);
  if (n < 0) return false;  // EINTR, or nothing after all: poll again
  if (n == 0) {             // the worker ended without answering: it crashed (or was killed)
    attempt_.status = stop_worker(false);
    end_attempt();
    return true;
  }
  answer_.append(buffer, static_cast<std::size_t>(n));
  const std::size_t end = answer_.find('\n');
  if (end == std::string::npos) return false;
  // "CODE\n": the run's exit code, as a fresh process would have ended.
  const int code = std::atoi(answer_.c_str());
  attempt_.status = (code & 0xff) << 8;  // what waitpid gives for exit(code)
  if (code != 0) stop_worker(false);     // the next run starts in a fresh worker
  end_attempt();
  return true;
}

}  // namespace adze
