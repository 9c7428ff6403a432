// Fuzzes the records of a sweep store (sweep/sweep_store.h): a store is made and opened once, then each input
// becomes a run's spec and result (split at the first NUL byte), written by a second connection, and the store
// is read back as adze sweep status, report and run-one read it.
#include <sqlite3.h>

#include <algorithm>
#include <cstring>

#include "sweep/sweep_report.h"
#include "sweep/sweep_store.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const std::string& store_dir() {
  static const std::string dir = [] {
    const std::string d = adze::fuzz::scratch_dir() + "/store";
    adze::SweepStore store = adze::SweepStore::open(d, true);
    store.set_sweep(nlohmann::ordered_json::object());
    adze::PreparedRun run;
    run.id = "00000000000000000000000000000000";
    run.run.axes = {{"model", "m.pt"}, {"plan", "p.json"}, {"pipeline", "q.json"}, {"seed", 0}};
    run.identity = nlohmann::ordered_json::object();
    store.add_runs({run});
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const adze::SweepStore store = adze::SweepStore::open(store_dir(), false);
  static sqlite3* db = [] {
    sqlite3* d = nullptr;
    if (sqlite3_open((store_dir() + "/sweep.db").c_str(), &d) != SQLITE_OK) std::abort();
    return d;
  }();
  const char* text = reinterpret_cast<const char*>(data);
  const size_t cut = std::find(text, text + size, '\0') - text;
  const std::string spec(text, cut), result = cut < size ? std::string(text + cut + 1, size - cut - 1) : "";
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "UPDATE runs SET spec = ?, result = ?, state = 'done'", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, spec.data(), static_cast<int>(spec.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, result.data(), static_cast<int>(result.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(st) != SQLITE_DONE) std::abort();
  sqlite3_finalize(st);
  adze::fuzz::expect_adze_errors_only([&] {
    store.counts();
    for (const adze::StoredRun& r : store.runs()) r.prepared();
    const adze::SweepReport report = adze::make_sweep_report(store);
    adze::to_markdown(report);
    adze::to_csv(report);
    adze::pareto_svgs(report);
  });
  return 0;
}
