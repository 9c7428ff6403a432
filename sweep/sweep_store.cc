#include "sweep/sweep_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>

#include "core/error.h"

namespace adze {
namespace {

constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, idx INTEGER NOT NULL, state TEXT NOT NULL, spec TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, host TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0,
  heartbeat REAL NOT NULL DEFAULT 0, result TEXT, error TEXT NOT NULL DEFAULT '', wall_s REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS runs_by_state ON runs (state, idx);
)";
constexpr const char* kFormat = "adze.sweep-store.v1";

Error store_error(int rc, const std::string& why, const std::string& where) {
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
    return Error(ErrorKind::kIo, "sweep store '" + where + "' is locked by another process (" + why + ")");
  if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
    return Error(ErrorKind::kIo, "sweep store '" + where + "' is corrupt or not a sweep store (" + why + ")");
  return Error(ErrorKind::kIo, "sweep store '" + where + "': " + why);
}

// One prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql, const std::string& where) : db_(db), where_(where) {
    check(sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr));
  }
  ~Statement() { sqlite3_finalize(s_); }
  Statement& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Statement& bind(int i, double v) {
    check(sqlite3_bind_double(s_, i, v));
    return *this;
  }
  /// true while there is a row.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    check(rc);
    return false;
  }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(s_, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int64_t integer(int c) const { return sqlite3_column_int64(s_, c); }
  double real(int c) const { return sqlite3_column_double(s_, c); }
  bool null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }

 private:
  void check(int rc) const {
    if (rc != SQLITE_OK) throw store_error(rc, sqlite3_errmsg(db_), where_);
  }
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  std::string where_;
};

constexpr const char* kColumns = "id, idx, state, spec, attempts, host, pid, heartbeat, result, error, wall_s";

// A record's JSON column, checked: Error(kIo) naming the store, the run and the column when it is not what adze
// writes there (an object; a spec with "axes" and "identity" objects).
nlohmann::ordered_json json_column(const Statement& s, int column, const char* name, const std::string& id,
                                   const std::string& where) {
  const auto bad = [&](const std::string& why) {
    return Error(ErrorKind::kIo, "sweep store '" + where + "' is corrupt: run " + id + ": its " + name + " " + why);
  };
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(s.text(column));
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("is not JSON (") + first_line_of(e) + ")");
  }
  if (!j.is_object()) throw bad("is not an object");
  if (std::string(name) == "spec")
    for (const char* key : {"axes", "identity"})
      if (!j.contains(key) || !j[key].is_object()) throw bad(std::string("has no '") + key + "' object");
  return j;
}

StoredRun row_of(const Statement& s, const std::string& where) {
  StoredRun r;
  r.id = s.text(0);
  r.index = s.integer(1);
  r.state = s.text(2);
  r.spec = json_column(s, 3, "spec", r.id, where);
  r.attempts = s.integer(4);
  r.host = s.text(5);
  r.pid = s.integer(6);
  r.heartbeat = s.real(7);
  if (!s.null(8)) r.result = json_column(s, 8, "result", r.id, where);
  r.error = s.text(9);
  r.wall_s = s.real(10);
  return r;
}

bool pid_alive(int64_t pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

}  // namespace

PreparedRun StoredRun::prepared() const {
  PreparedRun p;
  p.id = id;
  p.run.index = index;
  p.run.axes = spec.at("axes");
  p.identity = spec.at("identity");
  return p;
}

std::string host_name() {
  char name[256] = {0};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

double now_s() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

SweepStore::SweepStore(SweepStore&& o) noexcept : path_(std::move(o.path_)), db_(o.db_) { o.db_ = nullptr; }
SweepStore& SweepStore::operator=(SweepStore&& o) noexcept {
  std::swap(path_, o.path_);
  std::swap(db_, o.db_);
  return *this;
}
SweepStore::~SweepStore() {
  if (db_) sqlite3_close(db_);
}

void SweepStore::exec(const std::string& sql) const {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return;
  const std::string why = message ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  throw store_error(rc, why, path_);
}

SweepStore SweepStore::open(const std::string& dir, bool create, double busy_timeout_s) {
  SweepStore s;
  s.path_ = dir + "/sweep.db";
  if (!std::filesystem::exists(s.path_)) {
    if (!create) throw Error(ErrorKind::kIo, "no sweep store in '" + dir + "' (expected " + s.path_ + ")");
    std::filesystem::create_directories(dir);
  }
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(s.path_.c_str(), &s.db_, flags, nullptr) != SQLITE_OK)
    throw Error(ErrorKind::kIo,
                "failed to open sweep store '" + s.path_ + "': " + (s.db_ ? sqlite3_errmsg(s.db_) : "out of memory"));
  sqlite3_busy_timeout(s.db_, static_cast<int>(busy_timeout_s * 1000));
  s.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  s.exec(std::string("BEGIN IMMEDIATE;") + kSchema + "COMMIT;");
  Statement format(s.db_, "SELECT value FROM meta WHERE key = 'format'", s.path_);
  if (format.step()) {
    if (format.text(0) != kFormat)
      throw Error(ErrorKind::kIo, "sweep store '" + s.path_ + "' has format '" + format.text(0) + "', not " + kFormat);
  } else {
    Statement(s.db_, "INSERT INTO meta VALUES ('format', ?)", s.path_).bind(1, std::string(kFormat)).step();
  }
  return s;
}

nlohmann::ordered_json SweepStore::sweep() const {
  Statement s(db_, "SELECT value FROM meta WHERE key = 'sweep'", path_);
  if (!s.step()) return nullptr;
  try {
    return nlohmann::ordered_json::parse(s.text(0));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kIo,
                "sweep store '" + path_ + "' is corrupt: its sweep file is not JSON (" + first_line_of(e) + ")");
  }
}

void SweepStore::set_sweep(const nlohmann::ordered_json& sweep) {
  Statement(db_, "INSERT OR REPLACE INTO meta VALUES ('sweep', ?)", path_).bind(1, sweep.dump()).step();
}

int64_t SweepStore::add_runs(const std::vector<PreparedRun>& runs) {
  exec("BEGIN IMMEDIATE");
  int64_t added = 0;
  try {
    for (const PreparedRun& r : runs) {
      const nlohmann::ordered_json spec = {{"index", r.run.index}, {"axes", r.run.axes}, {"identity", r.identity}};
      Statement s(db_, "INSERT OR IGNORE INTO runs (id, idx, state, spec) VALUES (?, ?, 'pending', ?)", path_);
      s.bind(1, r.id).bind(2, r.run.index).bind(3, spec.dump()).step();
      added += sqlite3_changes(db_);
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return added;
}

int64_t SweepStore::reclaim(const std::string& host, double stale_after_s) {
  exec("BEGIN IMMEDIATE");
  int64_t reclaimed = 0;
  try {
    std::vector<std::string> dead;
    {
      Statement s(db_, "SELECT id, host, pid, heartbeat FROM runs WHERE state = 'running'", path_);
      while (s.step())
        if ((s.text(1) == host && !pid_alive(s.integer(2))) || now_s() - s.real(3) > stale_after_s)
          dead.push_back(s.text(0));
    }
    for (const std::string& id : dead) {
      Statement(db_, "UPDATE runs SET state = 'pending', host = '', pid = 0 WHERE id = ?", path_).bind(1, id).step();
      ++reclaimed;
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return reclaimed;
}

std::optional<StoredRun> SweepStore::claim(const std::string& host, int64_t pid) {
  exec("BEGIN IMMEDIATE");
  try {
    std::optional<StoredRun> run;
    {
      Statement s(db_, std::string("SELECT ") + kColumns + " FROM runs WHERE state = 'pending' ORDER BY idx LIMIT 1",
                  path_);
      if (s.step()) run = row_of(s, path_);
    }
    if (run) {
      Statement(db_,
                "UPDATE runs SET state = 'running', host = ?, pid = ?, heartbeat = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                path_)
          .bind(1, host)
          .bind(2, pid)
          .bind(3, now_s())
          .bind(4, run->id)
          .step();
      run->state = "running";
      run->host = host;
      run->pid = pid;
      ++run->attempts;
    }
    exec("COMMIT");
    return run;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void SweepStore::heartbeat(const std::string& id) {
  Statement(db_, "UPDATE runs SET heartbeat = ? WHERE id = ?", path_).bind(1, now_s()).bind(2, id).step();
}

void SweepStore::finish(const std::string& id, const nlohmann::ordered_json& result, double wall_s) {
  Statement(db_, "UPDATE runs SET state = 'done', result = ?, error = '', wall_s = ?, host = '', pid = 0 WHERE id = ?",
            path_)
      .bind(1, result.dump())
      .bind(2, wall_s)
      .bind(3, id)
      .step();
}

void SweepStore::fail(const std::string& id, const std::string& error, double wall_s, bool retry) {
  Statement(db_, "UPDATE runs SET state = ?, error = ?, wall_s = ?, host = '', pid = 0 WHERE id = ?", path_)
      .bind(1, std::string(retry ? "pending" : "failed"))
      .bind(2, error)
      .bind(3, wall_s)
      .bind(4, id)
      .step();
}

std::map<std::string, int64_t> SweepStore::counts() const {
  std::map<std::string, int64_t> out = {{"pending", 0}, {"running", 0}, {"done", 0}, {"failed", 0}};
  Statement s(db_, "SELECT state, COUNT(*) FROM runs GROUP BY state", path_);
  while (s.step()) out[s.text(0)] = s.integer(1);
  return out;
}

std::vector<StoredRun> SweepStore::runs() const {
  std::vector<StoredRun> out;
  Statement s(db_, std::string("SELECT ") + kColumns + " FROM runs ORDER BY idx", path_);
  while (s.step()) out.push_back(row_of(s, path_));
  return out;
}

std::optional<StoredRun> SweepStore::run(const std::string& id) const {
  Statement s(db_, std::string("SELECT ") + kColumns + " FROM runs WHERE id = ?", path_);
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return row_of(s, path_);
}

}  // namespace adze
