// The search driver as a library: what `adze search` does, called from C++ with typed options.
#include "search/search_run.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "hardware/cost_model.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::fixture;
using testing::TempDir;

// The sensitivity cache lives in the test's own directory.
struct CacheHere {
  TempDir tmp;
  CacheHere() { setenv("ADZE_CACHE_DIR", tmp.path().c_str(), 1); }
  ~CacheHere() { unsetenv("ADZE_CACHE_DIR"); }
};

SearchRunOptions small_search(const std::string& out) {
  SearchRunOptions o;
  o.space.model = fixture("cnn_bn_traced.pt");
  o.space.input_shape = "1x3x16x16";
  o.space.data = "tensors:" + fixture("tensors_small.pt");
  o.space.limit = 20;
  o.space.probes = 2;
  o.target = load_target("cortex-m7");
  o.budget = parse_budget("size=1200B");
  o.out = out;
  o.pipeline = confirmation_pipeline(o.space.act_bits, 0);
  o.confirmation.limit = 10;
  return o;
}

TEST(SearchRun, FindsConfirmsAndWritesAPlanThatResumesToTheSameBytes) {
  CacheHere cache;
  SearchRunOptions o = small_search(cache.tmp.file("s"));
  o.confirm = 2;
  o.confirmation.select_split = "val";
  std::vector<std::string> lines;
  const SearchRun run = run_search(o, [&](const std::string& line) { lines.push_back(line); });
  ASSERT_TRUE(run.result.satisfiable);
  EXPECT_LE(run.result.best.cost, 1200);
  EXPECT_EQ(run.problem.layers.size(), run.space.table.layers.size());
  EXPECT_EQ(run.baselines.size(), 8u);  // {2, 3, 4, 8} bits x {dense, 2:4}
  // The searched plan, a runner-up and the best uniform plan within the budget, each compressed for real.
  ASSERT_GE(run.confirmed_plans.size(), 2u);
  EXPECT_EQ(run.confirmed_plans[0].label, "searched");
  EXPECT_TRUE(run.selecting);
  EXPECT_EQ(run.leads.plan, run.written());
  EXPECT_EQ(run.leads.over.size(), run.confirmed_plans.size() - 1);  // over every other confirmed plan
  for (const char* f : {"plan.json", "front.json", "front.csv", "front.svg", "confirmed.svg", "search.log"})
    EXPECT_TRUE(std::filesystem::exists(o.out + "/" + f)) << f;
  EXPECT_EQ(lines.back(), "finished");
  EXPECT_EQ(read_file_text(o.out + "/front.json"), run.summary.dump(2) + "\n");

  // Resumed: every measurement and confirmation answered from disk, the same plan written.
  const std::string plan = read_file_text(o.out + "/plan.json");
  o.resume = true;
  lines.clear();
  const SearchRun again = run_search(o, [&](const std::string& line) { lines.push_back(line); });
  EXPECT_EQ(read_file_text(o.out + "/plan.json"), plan);
  EXPECT_EQ(again.written(), run.written());
  int from_disk = 0;
  for (const auto& l : lines) from_disk += l.rfind("confirmation of ", 0) == 0;
  EXPECT_EQ(from_disk, static_cast<int>(run.confirmed_plans.size()));
}

// Two searches compared on the same samples and seeds: another search's plan confirmed alongside this one's,
// with the written plan's paired lead over it.
TEST(SearchRun, AnotherSearchsPlanIsConfirmedAlongsideForAPairedLead) {
  CacheHere cache;
  SearchRunOptions first = small_search(cache.tmp.file("dense"));
  first.space.nm = {"none"};
  const SearchRun dense = run_search(first);
  SearchRunOptions o = small_search(cache.tmp.file("with-nm"));
  o.confirm_plans = {first.out + "/plan.json"};
  const SearchRun run = run_search(o);
  const std::string label = "plan " + first.out + "/plan.json";
  const auto confirmed = std::find_if(run.confirmed_plans.begin(), run.confirmed_plans.end(),
                                      [&](const ConfirmedPlan& p) { return p.label == label; });
  ASSERT_NE(confirmed, run.confirmed_plans.end());
  // The same plan: confirmed here with the same top-1 as in the search that wrote it.
  const auto there = std::find_if(dense.confirmed_plans.begin(), dense.confirmed_plans.end(),
                                  [&](const ConfirmedPlan& p) { return p.label == dense.written(); });
  ASSERT_NE(there, dense.confirmed_plans.end());
  EXPECT_EQ(confirmed->top1, there->top1);
  EXPECT_TRUE(
      std::any_of(run.leads.over.begin(), run.leads.over.end(), [&](const Lead& l) { return l.against == label; }));
}

TEST(SearchRun, ALatencyBudgetIsPricedByTheNamedCostModel) {
  CacheHere cache;
  SearchRunOptions o = small_search(cache.tmp.file("lat"));
  o.budget = parse_budget("latency=1s");
  o.confirm = 0;
  const SearchRun run = run_search(o);
  ASSERT_TRUE(run.result.satisfiable);
  // Each option's cost is the roofline's latency of the layer on the target.
  const auto roofline = cost_models().create("roofline", nlohmann::json::object(), "test");
  for (std::size_t l = 0; l < run.problem.layers.size(); ++l)
    for (std::size_t c = 0; c < run.problem.configs[l].size(); ++c)
      EXPECT_DOUBLE_EQ(run.problem.cost[l][c],
                       roofline->layer(o.target, run.space.table.layers[l], run.problem.configs[l][c], 1).latency_s);
  EXPECT_FALSE(run.summary.contains("cost_model"));  // the default: front.json as before
}

// Priced by the measured cost model, a latency search adds what runs between the layers, timed once in the
// packed runtime, to every plan's cost, and says so in search.log.
TEST(SearchRun, AMeasuredLatencyBudgetCountsWhatRunsBetweenTheLayers) {
  CacheHere cache;
  SearchRunOptions o = small_search(cache.tmp.file("lat"));
  o.budget = parse_budget("latency=1s");
  o.cost_model = "measured";
  o.target.name = "host";
  o.confirm = 0;
  const SearchRun run = run_search(o);
  EXPECT_GT(run.problem.fixed_cost, 0);
  EXPECT_LT(run.problem.fixed_cost, 0.1);
  EXPECT_DOUBLE_EQ(run.result.best.cost, run.problem.total_cost(run.result.best.choice));
  EXPECT_NE(read_file_text(o.out + "/search.log").find("latency between the layers"), std::string::npos);
}

TEST(SearchRun, BadOptionsAreRefusedBeforeAnyWork) {
  CacheHere cache;
  const auto refused = [&](SearchRunOptions o, const std::string& message) {
    try {
      (void)run_search(o);
      ADD_FAILURE() << "accepted; expected: " << message;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(o.out)) << message;  // nothing written
  };
  SearchRunOptions o = small_search(cache.tmp.file("bad"));
  o.cost_model = "oracle";
  refused(o, "oracle");
  o = small_search(cache.tmp.file("bad"));
  o.algo = "annealing";
  refused(o, "annealing");
  o = small_search(cache.tmp.file("bad"));
  o.confirm = 3;  // runners-up need a split to choose on
  refused(o, "--select-split");
  o.confirmation.select_split = "test";  // ... that is not the reporting one
  refused(o, "would overstate it");
  o = small_search(cache.tmp.file("bad"));
  o.confirm_baselines = {"w5"};
  refused(o, "no such uniform plan");
  o = small_search(cache.tmp.file("bad"));
  o.confirm_plans = {cache.tmp.file("absent.json")};
  refused(o, "absent.json");
  // A plan whose config is no option of the space (6 bits against {2, 3, 4, 8}), named with its layer.
  write_file_atomically(cache.tmp.file("w6.json"), R"({"defaults": {"weight_bits": 6}})");
  o = small_search(cache.tmp.file("bad"));
  o.confirm_plans = {cache.tmp.file("w6.json")};
  refused(o, "not an option of this search's space");
  o = small_search(cache.tmp.file("bad"));
  o.batch = 0;
  refused(o, "--batch 0");
}

}  // namespace
}  // namespace adze
