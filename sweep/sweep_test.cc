#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/files.h"
#include "sweep/local_executor.h"
#include "sweep/run_slot.h"
#include "sweep/sweep_file.h"
#include "sweep/sweep_report.h"
#include "sweep/sweep_runs.h"
#include "sweep/sweep_store.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using nlohmann::ordered_json;
using testing::config;
using testing::expect_error;
using testing::fixture;
using testing::TempDir;

// A sweep over the traced CNN fixture and its tensors: `grid` replaces the default grid's axes it names.
ordered_json fixture_sweep(const ordered_json& grid = ordered_json::object()) {
  ordered_json doc = {{"grid",
                       {{"model", {{{"path", fixture("cnn_bn_traced.pt")}, {"input_shape", "1x3x16x16"}}}},
                        {"plan", {config("plans/int8.json"), config("plans/int4.json")}},
                        {"pipeline", {config("pipelines/ptq.json")}},
                        {"seed", {0, 1}},
                        {"data", {"tensors:" + fixture("tensors_small.pt")}}}}};
  for (const auto& [axis, values] : grid.items()) doc["grid"][axis] = values;
  return doc;
}

// A child's end wakes a wait on it at once, whatever the wait's length, and its status is kept; a child past its
// timeout is killed at the timeout, not a wait later.
TEST(ChildRun, AWaitEndsWhenTheChildDoes) {
  TempDir tmp;
  ExecutorOptions o;
  o.child_command = {"/bin/sh", "-c", "sleep 0.2; exit 3"};  // the run's id becomes $0
  const auto start = std::chrono::steady_clock::now();
  ChildRun child(tmp.path(), "run-a", o);
  while (!child.poll(30.0)) {
  }
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(waited, 10.0) << "the wait lasted its whole length";
  EXPECT_GE(child.attempt().wall_s, 0.2);
  ASSERT_TRUE(WIFEXITED(child.attempt().status));
  EXPECT_EQ(WEXITSTATUS(child.attempt().status), 3);
  EXPECT_FALSE(child.attempt().timed_out);
  EXPECT_TRUE(child.poll(30.0));  // ended: at once

  o.child_command = {"/bin/sh", "-c", "sleep 30"};
  o.timeout_s = 0.3;
  ChildRun late(tmp.path(), "run-b", o);
  while (!late.poll(30.0)) {
  }
  EXPECT_TRUE(late.attempt().timed_out);
  EXPECT_LT(late.attempt().wall_s, 10.0);
  ASSERT_TRUE(WIFSIGNALED(late.attempt().status));
  EXPECT_EQ(WTERMSIG(late.attempt().status), SIGKILL);
}

// A worker kept between runs: ids in and exit codes out on its fd 3, the same process for run after run that
// succeeds; a failed run, a crash or a timeout costs the worker, and the next run gets a fresh one.
TEST(RunSlot, AWorkerServesRunAfterRunAndIsReplacedAfterAFailure) {
  TempDir tmp;
  const std::string served = tmp.file("served.txt");
  ExecutorOptions o;
  o.worker_command = {"/bin/sh", "-c",
                      "while read -r id <&3; do echo \"$$ $id\" >> " + served +
                          "; case $id in ok*) echo 0 >&3;; fail*) echo 2 >&3;; crash*) kill -9 $$;; "
                          "hang*) sleep 30;; esac; done"};
  o.timeout_s = 5;
  RunSlot slot(o);
  const auto run = [&](const std::string& id) {
    slot.start(tmp.path(), id);
    return slot.wait([] {});
  };
  const auto worker_of = [&](const std::string& id) {  // the pid that served `id`
    std::ifstream in(served);
    std::string pid, line_id;
    while (in >> pid >> line_id)
      if (line_id == id) return pid;
    return std::string();
  };
  for (const char* id : {"ok-1", "ok-2"}) {
    const Attempt a = run(id);
    ASSERT_TRUE(WIFEXITED(a.status)) << id;
    EXPECT_EQ(WEXITSTATUS(a.status), 0) << id;
    EXPECT_FALSE(a.timed_out);
  }
  EXPECT_EQ(worker_of("ok-1"), worker_of("ok-2"));
  EXPECT_FALSE(worker_of("ok-1").empty());

  Attempt a = run("fail-1");
  ASSERT_TRUE(WIFEXITED(a.status));
  EXPECT_EQ(WEXITSTATUS(a.status), 2);
  EXPECT_EQ(WEXITSTATUS(run("ok-3").status), 0);
  EXPECT_NE(worker_of("ok-3"), worker_of("fail-1"));

  a = run("crash-1");
  ASSERT_TRUE(WIFSIGNALED(a.status));
  EXPECT_EQ(WTERMSIG(a.status), SIGKILL);
  EXPECT_FALSE(a.timed_out);
  EXPECT_EQ(WEXITSTATUS(run("ok-4").status), 0);

  o.timeout_s = 0.3;
  RunSlot timed(o);
  timed.start(tmp.path(), "hang-1");
  a = timed.wait([] {});
  EXPECT_TRUE(a.timed_out);
  EXPECT_LT(a.wall_s, 10.0);
  timed.start(tmp.path(), "ok-5");
  a = timed.wait([] {});
  EXPECT_FALSE(a.timed_out);
  EXPECT_EQ(WEXITSTATUS(a.status), 0);
  EXPECT_TRUE(std::filesystem::exists(tmp.file("runs/ok-5")));  // each run's directory, for its log
}

TEST(SweepFile, ExpandsTheGridThenZipsLessTheExcluded) {
  const SweepFile s = parse_sweep(ordered_json::parse(R"({
      "grid": {"seed": [0, 1], "model": ["a.pt", "b.pt"]},
      "zip": [{"plan": ["p1.json", "p2.json", "p3.json"], "pipeline": ["q1.json", "q2.json", "q3.json"]}],
      "exclude": [{"model": "b.pt", "plan": "p2.json"}, {"seed": 1, "model": "a.pt"}]})"),
                                  "s.json");
  const std::vector<SweepRun> runs = expand_sweep(s);
  // 2 models × 2 seeds × 3 zipped rows = 12, less b.pt/p2 (2 seeds) and a.pt/seed 1 (3 rows): 7.
  ASSERT_EQ(runs.size(), 7u);
  EXPECT_EQ(runs[0].axes, ordered_json::parse(R"({"model": "a.pt", "plan": "p1.json", "pipeline": "q1.json",
                                                   "seed": 0})"));
  EXPECT_EQ(runs[3].axes["model"], "b.pt");  // models vary slowest (axis order: model, plan, ..., seed)
  for (std::size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].index, static_cast<int64_t>(i));
    EXPECT_FALSE(runs[i].axes["model"] == "b.pt" && runs[i].axes["plan"] == "p2.json");
    EXPECT_FALSE(runs[i].axes["model"] == "a.pt" && runs[i].axes["seed"] == 1);
  }
  EXPECT_EQ(describe_axes(runs[0].axes), "model=a.pt plan=p1.json pipeline=q1.json seed=0");
}

TEST(SweepFile, YamlReadsAsTheSameJson) {
  TempDir tmp;
  std::ofstream(tmp.file("s.yaml")) << "grid:\n  model: [a.pt, {path: b.pt, input_shape: 1x3x16x16}]\n"
                                       "  plan: [p.json]\n  pipeline: [\"q.json\"]\n  seed: [0, 7]\n"
                                       "options: {limit: 100}\nexport: [packed]\nverify: false\n";
  std::ofstream(tmp.file("s.json"))
      << R"({"grid": {"model": ["a.pt", {"path": "b.pt", "input_shape": "1x3x16x16"}], "plan": ["p.json"],
             "pipeline": ["q.json"], "seed": [0, 7]}, "options": {"limit": 100}, "export": ["packed"]})";
  EXPECT_EQ(load_sweep_file(tmp.file("s.yaml")).canonical(), load_sweep_file(tmp.file("s.json")).canonical());
  EXPECT_EQ(expand_sweep(load_sweep_file(tmp.file("s.yaml"))).size(), 4u);
}

TEST(SweepFile, BadFilesNameTheFileAndTheAxisOrValue) {
  TempDir tmp;
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"grid": {"modle": ["a.pt"]}})", "grid: unknown axis 'modle'"},
      {R"({"grid": {"model": []}})", "grid axis 'model': expected a non-empty list"},
      {R"({"grid": {}})", "grid is empty"},
      {R"({"grid": {"model": ["a.pt"], "plan": ["p"], "pipeline": ["q"], "seed": [-1]}})",
       "grid axis 'seed' value -1: expected an integer >= 0"},
      {R"({"grid": {"model": [3], "plan": ["p"], "pipeline": ["q"]}})", "grid axis 'model' value 3"},
      {R"({"grid": {"model": ["a"], "plan": ["p"]}})", "no 'pipeline' axis"},
      {R"({"grid": {"model": ["a"], "plan": ["p"], "pipeline": ["q"]}, "sweeps": 1})", "unknown field 'sweeps'"},
      {R"({"grid": {"model": ["a"]}, "zip": [{"plan": ["p", "r"], "pipeline": ["q"]}]})",
       "zip group 0 axis 'pipeline': 1 values, the group's other lists 2"},
      {R"({"grid": {"model": ["a"], "plan": ["p"], "pipeline": ["q"]}, "exclude": [{"model": "a"}]})",
       "every run is excluded"},
      {R"({"grid": {"model": ["a"], "plan": ["p"], "pipeline": ["q"]}, "options": {"limt": 3}})",
       "unknown option 'limt'"},
      {R"({"grid": {"model": ["a"], "plan": ["p"], "pipeline": ["q"]}, "verify": true})", "needs formats in 'export'"},
      {"grid: [model", "not JSON"},
      // Search sweeps: the plan is found, the budget, target and data are needed, the settings are checked.
      {R"({"grid": {"model": ["a"], "plan": ["p"], "pipeline": ["q"], "budget": ["size=1KB"]}})",
       "a 'budget' axis needs kind: search"},
      {R"({"kind": "search", "grid": {"model": ["a"], "plan": ["p"], "pipeline": ["q"], "budget": ["size=1KB"],
           "target": ["t"], "data": ["d"]}})",
       "a 'plan' axis in a search sweep"},
      {R"({"kind": "search", "grid": {"model": ["a"], "pipeline": ["q"], "target": ["t"], "data": ["d"]}})",
       "no 'budget' axis"},
      {R"({"kind": "search", "grid": {"model": ["a"], "pipeline": ["q"], "budget": ["size=12parsecs"],
           "target": ["t"], "data": ["d"]}})",
       "grid axis 'budget' value size=12parsecs"},
      {R"({"kind": "search", "grid": {"model": ["a"], "pipeline": ["q"], "budget": ["bits=4"], "target": ["t"],
           "data": ["d"]}, "search": {"algo": "annealing"}})",
       "search.algo: unknown searcher 'annealing'"},
      {R"({"kind": "search", "grid": {"model": ["a"], "pipeline": ["q"], "budget": ["bits=4"], "target": ["t"],
           "data": ["d"]}, "search": {"bits": [4, 17]}})",
       "search.bits [4,17]"},
      {R"({"kind": "search", "grid": {"model": ["a"], "pipeline": ["q"], "budget": ["bits=4"], "target": ["t"],
           "data": ["d"]}, "search": {"limit": "all"}})",
       "search.limit all: expected an integer >= 0"},
      {R"({"kind": "searching", "grid": {"model": ["a"]}})", "kind searching"},
      {R"({"grid": {"model": ["a"], "plan": ["p"], "pipeline": ["q"]}, "bench": true})", "bench needs formats"},
      {R"({"grid": {"model": ["a"], "plan": ["p"], "pipeline": ["q"]}, "export": ["packed"],
           "bench": {"runs": 0}})",
       "bench.runs 0: expected an integer >= 1"},
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const std::string path = tmp.file("bad" + std::to_string(i) + ".json");
    std::ofstream(path) << bad[i].first;
    expect_error([&] { expand_sweep(load_sweep_file(path)); }, ErrorKind::kInvalidConfig,
                 {"'" + path + "'", bad[i].second});
  }
  std::ofstream(tmp.file("bad.yaml")) << "grid: {model: [a.pt";
  expect_error([&] { load_sweep_file(tmp.file("bad.yaml")); }, ErrorKind::kInvalidConfig, {"bad.yaml", "not YAML"});
  std::ofstream(tmp.file("latin1.yaml"))
      << "grid: {model: [caf\xe9.pt], plan: [p], pipeline: [q]}";  // found by fuzzing
  expect_error([&] { load_sweep_file(tmp.file("latin1.yaml")); }, ErrorKind::kInvalidConfig,
               {"latin1.yaml", "not UTF-8 text"});
}

// A run's id hashes what its result depends on: the same content under another path is the same run, and
// any change of seed, plan or data options is another.
TEST(SweepRuns, IdsFollowContentNotPaths) {
  TempDir tmp;
  std::filesystem::copy_file(fixture("cnn_bn_traced.pt"), tmp.file("copy.pt"));
  const ordered_json copy = {{"path", tmp.file("copy.pt")}, {"input_shape", "1x3x16x16"}};
  ordered_json doc = fixture_sweep({{"model", {fixture_sweep()["grid"]["model"][0], copy}}});
  const std::vector<PreparedRun> runs = prepare_runs(parse_sweep(doc, "s.json"), false);
  ASSERT_EQ(runs.size(), 4u);  // 8 expanded, the copy's 4 merged into the original's
  std::set<std::string> ids;
  for (const auto& r : runs) {
    EXPECT_EQ(r.id.size(), 32u);
    EXPECT_EQ(r.id, xxh128_hex(r.identity.dump()));
    ids.insert(r.id);
  }
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(prepare_runs(parse_sweep(doc, "s.json"), false)[3].id, runs[3].id);  // stable
  doc["options"] = ordered_json::object({{"limit", 3}});
  EXPECT_NE(prepare_runs(parse_sweep(doc, "s.json"), false)[0].id, runs[0].id);
}

TEST(SweepRuns, EveryValueIsCheckedBeforeAnyRun) {
  TempDir tmp;
  const std::vector<std::pair<ordered_json, std::vector<std::string>>> bad = {
      {fixture_sweep({{"plan", {config("plans/int8.json"), "/nowhere/plan.json"}}}),
       {"axis 'plan' value /nowhere/plan.json"}},
      {fixture_sweep({{"model", {"no-such-model"}}}), {"axis 'model' value no-such-model", "no such file"}},
      {fixture_sweep({{"target", {"cortex-a77"}}}), {"axis 'target' value cortex-a77"}},
      {fixture_sweep({{"target", {"cortex-a76"}}, {"plan", {config("plans/w3-channel.json")}}}),
       {"axis 'plan' value", "w3-channel.json", "does not run on target 'cortex-a76'"}},
      {fixture_sweep({{"data", {"tensors:" + fixture("tensors_tokens.pt")}}}), {"axis 'data'"}},
      {fixture_sweep({{"pipeline", {config("pipelines/ptq.json"), "/nowhere.json"}}}),
       {"axis 'pipeline' value /nowhere.json"}},
  };
  for (const auto& [file, parts] : bad) {
    SCOPED_TRACE(parts[0]);
    std::vector<std::string> want = parts;
    want.push_back("'s.json'");
    const ordered_json& doc = file;  // a lambda cannot capture a structured binding in C++17
    expect_error([&] { prepare_runs(parse_sweep(doc, "s.json"), false); }, ErrorKind::kInvalidConfig, want);
  }
  ordered_json no_data = fixture_sweep({{"pipeline", {config("pipelines/ptq-activations.json")}}});
  no_data["grid"].erase("data");
  expect_error([&] { prepare_runs(parse_sweep(no_data, "s.json"), false); }, ErrorKind::kInvalidConfig,
               {"axis 'pipeline'", "no 'data' axis"});
  ordered_json refused = fixture_sweep();
  refused["export"] = {"c-header"};
  std::ofstream(tmp.file("lowrank.json")) << R"({"layers": {"features.0": {"decompose": "lowrank", "rank": 2}}})";
  refused["grid"]["plan"] = {tmp.file("lowrank.json")};
  expect_error([&] { prepare_runs(parse_sweep(refused, "s.json"), false); }, ErrorKind::kInvalidConfig,
               {"axis 'plan'", "export c-header refuses it", "decompose"});
}

PreparedRun fake_run(int64_t index) {
  PreparedRun r;
  r.run.index = index;
  r.run.axes = {{"model", "m.pt"}, {"seed", index}};
  r.identity = {{"seed", index}};
  r.id = xxh128_hex(r.identity.dump());
  return r;
}

TEST(SweepStore, LeasesFinishesFailsAndReclaimsDeadWorkers) {
  TempDir tmp;
  SweepStore store = SweepStore::open(tmp.file("s"), true);
  EXPECT_TRUE(store.sweep().is_null());
  store.set_sweep({{"grid", {{"seed", {0, 1, 2}}}}});
  EXPECT_EQ(store.add_runs({fake_run(0), fake_run(1), fake_run(2)}), 3);
  EXPECT_EQ(store.add_runs({fake_run(1), fake_run(3)}), 1);  // by id: one new
  const auto a = store.claim("here", getpid());
  ASSERT_TRUE(a);
  EXPECT_EQ(a->index, 0);
  EXPECT_EQ(a->attempts, 1);
  store.finish(a->id, {{"top1", 0.5}}, 1.5);
  const auto b = store.claim("here", getpid());
  store.fail(b->id, "adze: error: it broke", 0.1, /*retry=*/true);
  EXPECT_EQ(store.run(b->id)->state, "pending");
  const auto c = store.claim("here", getpid());
  EXPECT_EQ(c->id, b->id);
  EXPECT_EQ(c->attempts, 2);
  store.fail(c->id, "adze: error: it broke again", 0.1, /*retry=*/false);
  // A lease held by a pid that no longer runs on this host goes back to pending; a live one stays.
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  const auto d = store.claim("here", child);
  const auto e = store.claim("here", getpid());
  EXPECT_EQ(store.reclaim("here", 600), 1);
  EXPECT_EQ(store.run(d->id)->state, "pending");
  EXPECT_EQ(store.run(e->id)->state, "running");
  EXPECT_EQ(store.reclaim("elsewhere", 0), 1);  // another host's silent lease, past --stale-after
  const auto counts = store.counts();
  EXPECT_EQ(counts.at("done"), 1);
  EXPECT_EQ(counts.at("failed"), 1);
  EXPECT_EQ(counts.at("pending"), 2);
  EXPECT_EQ(counts.at("running"), 0);
  // Read back by another connection: the result and the error as recorded.
  const SweepStore again = SweepStore::open(tmp.file("s"), false);
  EXPECT_EQ(again.run(a->id)->result, (ordered_json{{"top1", 0.5}}));
  EXPECT_EQ(again.run(c->id)->error, "adze: error: it broke again");
  EXPECT_EQ(again.sweep(), (ordered_json{{"grid", {{"seed", {0, 1, 2}}}}}));
}

TEST(SweepStore, CorruptAndLockedStoresAreRefusedByName) {
  TempDir tmp;
  expect_error([&] { SweepStore::open(tmp.file("none"), false); }, ErrorKind::kIo, {"no sweep store in"});
  std::filesystem::create_directories(tmp.file("bad"));
  std::ofstream(tmp.file("bad/sweep.db")) << std::string(4096, 'x');
  expect_error([&] { SweepStore::open(tmp.file("bad"), false); }, ErrorKind::kIo,
               {"bad/sweep.db", "corrupt or not a sweep store"});
  SweepStore store = SweepStore::open(tmp.file("s"), true, 0.05);
  store.add_runs({fake_run(0)});
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(tmp.file("s/sweep.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  expect_error([&] { SweepStore::open(tmp.file("s"), false, 0.05); }, ErrorKind::kIo,
               {"sweep.db", "locked by another process"});
  expect_error([&] { store.claim("here", getpid()); }, ErrorKind::kIo, {"sweep.db", "locked by another process"});
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_TRUE(SweepStore::open(tmp.file("s"), false).claim("here", getpid()));
  // A record damaged by hand: the store names the run and the column; a result of the wrong shape reports
  // as empty cells.
  store.finish(fake_run(0).id, {{"metrics", 3}, {"exports", {{"packed", {{"verify", "yes"}}}}}}, 1);
  const SweepReport report = make_sweep_report(store);
  ASSERT_EQ(report.rows.size(), 1u);
  EXPECT_FALSE(report.rows[0].after);
  EXPECT_EQ(report.rows[0].verify, "FAIL packed");
  ASSERT_EQ(sqlite3_open(tmp.file("s/sweep.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "UPDATE runs SET spec = '{\"axes\": 1'", nullptr, nullptr, nullptr), SQLITE_OK);
  expect_error([&] { store.runs(); }, ErrorKind::kIo, {"sweep.db' is corrupt: run", "its spec is not JSON"});
  ASSERT_EQ(sqlite3_exec(other, "UPDATE runs SET spec = '{\"axes\": {}}'", nullptr, nullptr, nullptr), SQLITE_OK);
  expect_error([&] { store.runs(); }, ErrorKind::kIo, {"its spec has no 'identity' object"});
  sqlite3_close(other);
}

}  // namespace
}  // namespace adze

namespace adze {
namespace {

// A report over a store of finished runs: rows grouped by model × target, effects per axis, the Pareto front of
// drop against size, and the three formats.
TEST(SweepReport, TabulatesEffectsAndTheFront) {
  TempDir tmp;
  SweepStore store = SweepStore::open(tmp.file("s"), true);
  struct Fake {
    std::string plan;
    int seed;
    double after, bytes;
  };
  const std::vector<Fake> fakes = {{"p/int8.json", 0, 0.90, 4000}, {"p/int8.json", 1, 0.88, 4000},
                                   {"p/int4.json", 0, 0.85, 2000}, {"p/int4.json", 1, 0.87, 2000},
                                   {"p/w2.json", 0, 0.50, 1500},   {"p/bad.json", 0, 0.40, 3000}};
  std::vector<PreparedRun> runs;
  for (std::size_t i = 0; i < fakes.size(); ++i) {
    PreparedRun r;
    r.run.index = static_cast<int64_t>(i);
    r.run.axes = {{"model", "m.pt"}, {"plan", fakes[i].plan}, {"target", "a76"}, {"seed", fakes[i].seed}};
    r.identity = r.run.axes;
    r.id = xxh128_hex(r.identity.dump());
    runs.push_back(r);
  }
  store.add_runs(runs);
  for (const Fake& f : fakes) {
    const auto run = store.claim("here", getpid());
    store.finish(run->id,
                 {{"metrics", {{"before", {{"top1", 0.90}}}, {"after", {{"top1", f.after}}}}},
                  {"size", {{"compressed_bytes", f.bytes}, {"ratio", 8000 / f.bytes}}},
                  {"cost", {{"latency_s", 1e-3}}},
                  {"exports", {{"packed", {{"verify", {{"pass", f.plan != "p/bad.json"}}}}}}}},
                 1.0);
  }
  PreparedRun lm;  // a language model's run: its metric is cross-entropy, its drop the increase
  lm.run.index = 6;
  lm.run.axes = {{"model", "gpt.pt"}, {"plan", "p/int8.json"}, {"seed", 0}};
  lm.identity = lm.run.axes;
  lm.id = xxh128_hex(lm.identity.dump());
  store.add_runs({lm});
  store.finish(store.claim("here", getpid())->id,
               {{"metrics",
                 {{"before", {{"task", "language-model"}, {"top1", 0.4}, {"cross_entropy", 2.0}}},
                  {"after", {{"task", "language-model"}, {"top1", 0.4}, {"cross_entropy", 2.25}}}}},
                {"size", {{"compressed_bytes", 100}, {"ratio", 4}}}},
               1.0);
  SweepReport report = make_sweep_report(store);
  ASSERT_EQ(report.rows.size(), 7u);
  EXPECT_EQ(report.rows[0].group, "gpt.pt");  // groups in name order
  EXPECT_EQ(report.rows[0].metric, "cross_entropy");
  EXPECT_NEAR(*report.rows[0].drop, 0.25, 1e-9);
  report.rows.erase(report.rows.begin());
  EXPECT_EQ(report.rows[0].group, "m.pt @ a76");
  EXPECT_NEAR(*report.rows[2].drop, 5.0, 1e-9);  // 0.90 -> 0.85: 5 points
  EXPECT_EQ(report.rows[0].verify, "pass");
  EXPECT_EQ(report.rows[5].verify, "FAIL packed");
  // Effects within the group: plan has 4 values, seed 2; model and target are the group (no rows).
  int plan_rows = 0;
  for (const AxisEffect& e : report.effects) {
    plan_rows += e.axis == "plan";
    EXPECT_NE(e.axis, "model");
    if (e.axis == "plan" && e.value == "p/int4.json") {
      EXPECT_EQ(e.runs, 2);
      EXPECT_NEAR(e.mean_drop, 4.0, 1e-9);  // (5 + 3) / 2
      EXPECT_NEAR(e.mean_bytes, 2000, 1e-9);
    }
  }
  EXPECT_EQ(plan_rows, 4);
  // The front: w2 (smallest), int4 seed 1 (drop 3 at 2000 B), int8 seed 0 (drop 0); int8 seed 1, int4 seed 0 and
  // bad are dominated.
  const auto svgs = pareto_svgs(report);
  ASSERT_EQ(svgs.size(), 1u);
  const std::string& svg = svgs[0].second;
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  int rings = 0;  // the front's runs, ringed and labelled with their plan
  const std::string ring = "fill=\"none\" stroke=\"#2a2\" stroke-width=\"2\"";
  for (std::size_t at = svg.find(ring); at != std::string::npos; at = svg.find(ring, at + 1)) ++rings;
  EXPECT_EQ(rings, 3);
  for (const char* label : {">w2.json<", ">int4.json<", ">int8.json<"}) EXPECT_NE(svg.find(label), std::string::npos);
  EXPECT_EQ(svg.find(">bad.json<"), std::string::npos);
  const std::string csv = to_csv(report);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "id,state,model,plan,pipeline,target,budget,seed,data,metric,before,after,drop,"
            "compressed_bytes,ratio,latency_s,bench_s,speedup,within_budget,verify,wall_s,error");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  const std::string md = to_markdown(report);
  EXPECT_NE(md.find("### m.pt @ a76"), std::string::npos);
  EXPECT_NE(md.find("| int4.json | 0 | done | top1 | 0.9000 | 0.8500 | 5.00 | 1.95 |"), std::string::npos) << md;
  EXPECT_EQ(to_json(report)["runs"].size(), 6u);
}

}  // namespace
}  // namespace adze
