// A sweep's store: one SQLite database (DIR/sweep.db, WAL mode) holding the sweep file it runs and one row per
// run: its spec, its state (pending, running, done, failed), the lease of the worker running it (host, pid, a
// heartbeat), its attempts, its result or its one-line error, and its wall time. Each change is one
// transaction, so a process killed at any point leaves every run either as it was or as it became.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sweep/sweep_runs.h"

struct sqlite3;

namespace adze {

struct StoredRun {
  std::string id;
  int64_t index = 0;
  std::string state;            ///< pending, running, done, failed
  nlohmann::ordered_json spec;  ///< {"index", "axes", "identity", "id"}
  int64_t attempts = 0;
  std::string host;
  int64_t pid = 0;
  double heartbeat = 0;           ///< seconds since the epoch
  nlohmann::ordered_json result;  ///< null unless done
  std::string error;              ///< failed: the last attempt's one-line error
  double wall_s = 0;              ///< the last attempt's
  PreparedRun prepared() const;
};

class SweepStore {
 public:
  /// Opens DIR/sweep.db; with `create`, makes DIR and the store when missing. Error(kIo) naming the file when it
  /// is not a sweep store (corrupt, or another kind of file), or is locked by another writer for longer than
  /// `busy_timeout_s`.
  static SweepStore open(const std::string& dir, bool create, double busy_timeout_s = 10);
  SweepStore(SweepStore&&) noexcept;
  SweepStore& operator=(SweepStore&&) noexcept;
  ~SweepStore();

  const std::string& path() const { return path_; }
  /// The sweep file the store runs (canonical JSON), or null for a new store.
  nlohmann::ordered_json sweep() const;
  /// Records the sweep file (a new store), or with `extend` replaces it (a store extended with more runs).
  void set_sweep(const nlohmann::ordered_json& sweep);
  /// Adds the runs not in the store yet (by id), pending; returns how many were new.
  int64_t add_runs(const std::vector<PreparedRun>& runs);
  /// Running rows whose lease is dead go back to pending: on `host`, a pid that no longer runs; anywhere, a
  /// heartbeat older than `stale_after_s`. Returns how many.
  int64_t reclaim(const std::string& host, double stale_after_s);
  /// Takes the first pending run (by index) for this worker, marking it running with a fresh heartbeat and one
  /// more attempt; none when nothing is pending.
  std::optional<StoredRun> claim(const std::string& host, int64_t pid);
  void heartbeat(const std::string& id);
  /// A finished attempt: done with its result.
  void finish(const std::string& id, const nlohmann::ordered_json& result, double wall_s);
  /// A failed attempt: pending again when `retry`, else failed with `error`.
  void fail(const std::string& id, const std::string& error, double wall_s, bool retry);
  /// The number of runs in each state (every state present, 0 when none).
  std::map<std::string, int64_t> counts() const;
  std::vector<StoredRun> runs() const;
  std::optional<StoredRun> run(const std::string& id) const;

 private:
  SweepStore() = default;
  void exec(const std::string& sql) const;
  std::string path_;
  sqlite3* db_ = nullptr;
};

/// This machine's host name.
std::string host_name();
/// Seconds since the epoch.
double now_s();

}  // namespace adze
