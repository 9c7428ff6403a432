#include "sweep/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"

namespace adze {
namespace {

struct Attempt {
  int status = 0;  ///< waitpid's
  bool timed_out = false;
  double wall_s = 0;
};

// Starts the child with its output appended to `log`, waits for it (heartbeating the lease), and kills it at the
// timeout.
Attempt run_child(const std::vector<std::string>& argv, const std::string& log, SweepStore& store,
                  const std::string& id, const ExecutorOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw Error(ErrorKind::kIo, std::string("failed to start a sweep run: fork: ") + std::strerror(errno));
  if (pid == 0) {
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
  Attempt a;
  auto last_beat = start;
  for (;;) {
    const pid_t done = waitpid(pid, &a.status, WNOHANG);
    if (done == pid) break;
    const auto now = std::chrono::steady_clock::now();
    if (o.timeout_s > 0 && std::chrono::duration<double>(now - start).count() > o.timeout_s) {
      kill(pid, SIGKILL);
      waitpid(pid, &a.status, 0);
      a.timed_out = true;
      break;
    }
    if (std::chrono::duration<double>(now - last_beat).count() >= o.heartbeat_s) {
      store.heartbeat(id);
      last_beat = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  a.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return a;
}

// The last non-empty line of the log after byte `from`: the child's one-line error.
std::string last_line(const std::string& log, std::streamoff from) {
  std::ifstream in(log);
  in.seekg(from);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

std::string describe_failure(const Attempt& a, const std::string& log_line, const ExecutorOptions& o) {
  if (a.timed_out) {
    char limit[32];
    std::snprintf(limit, sizeof limit, "%g", o.timeout_s);
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

std::string run_directory(const std::string& dir, const std::string& id) { return dir + "/runs/" + id; }

ExecutorSummary run_pending(SweepStore& store, const std::string& dir, const ExecutorOptions& o) {
  ExecutorSummary summary;
  const std::string host = host_name();
  const auto counts = store.counts();
  const int64_t total = counts.at("pending") + counts.at("running") + counts.at("done") + counts.at("failed");
  int64_t finished = counts.at("done") + counts.at("failed");
  double wall = 0;
  int64_t timed = 0;
  ProgressBar bar("sweep", total, o.progress);
  const auto status = [&] {
    const auto c = store.counts();
    std::string s = "done " + std::to_string(c.at("done")) + ", failed " + std::to_string(c.at("failed")) +
                    ", pending " + std::to_string(c.at("pending"));
    if (timed > 0 && c.at("pending") > 0)
      s += ", ~" + std::to_string(static_cast<int64_t>(std::ceil(wall / timed * c.at("pending")))) + " s left";
    return s;
  };
  bar.update(finished, status());
  while (auto run = store.claim(host, getpid())) {
    const std::string run_dir = run_directory(dir, run->id);
    std::filesystem::create_directories(run_dir);
    if (const auto result = finished_result(run_dir); !result.is_null()) {
      store.finish(run->id, result, run->wall_s);  // finished before the sweep that ran it died
      ++summary.adopted;
      ++summary.done;
      bar.update(++finished, status());
      continue;
    }
    const std::string log = run_dir + "/log.txt";
    const std::streamoff from = std::filesystem::exists(log) ? std::filesystem::file_size(log) : 0;
    std::vector<std::string> argv = o.child_command;
    argv.push_back(run->id);
    const Attempt a = run_child(argv, log, store, run->id, o);
    ++summary.attempts;
    const auto result = finished_result(run_dir);
    if (!a.timed_out && WIFEXITED(a.status) && WEXITSTATUS(a.status) == 0 && !result.is_null()) {
      store.finish(run->id, result, a.wall_s);
      ++summary.done;
      wall += a.wall_s;
      ++timed;
      bar.update(++finished, status());
      continue;
    }
    const bool retry = run->attempts <= o.retries;
    store.fail(run->id, describe_failure(a, last_line(log, from), o), a.wall_s, retry);
    if (!retry) {
      ++summary.failed;
      bar.update(++finished, status());
    }
  }
  bar.finish(status());
  return summary;
}

}  // namespace adze
