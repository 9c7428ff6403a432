#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "compress/frontend.h"
#include "compress/model.h"
#include "exporters/exporter.h"
#include "hardware/target.h"
#include "search/budget.h"
#include "search/search_space.h"
#include "search/searcher.h"
#include "search/sensitivity.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;
using testing::fixture;

struct Fixture {
  Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{10, 3, 16, 16}, "float32"});
  LayerTable table = build_layer_table(model);
  Dataset data = load_dataset("tensors:" + fixture("tensors_small.pt"), {"train", 0, 0});
};

TEST(SearchSpace, KeepsOnlyWhatTheLayerTargetAndExporterAllow) {
  Fixture f;
  SpaceSpec spec;
  auto space = build_search_space(f.table, spec, nullptr, nullptr);
  ASSERT_EQ(space.size(), 3u);
  EXPECT_EQ(space[0].configs.size(), 4u);  // features.0 has 3 input channels: no 2:4
  EXPECT_NE(space[0].excluded[0].find("w2 2:4"), std::string::npos);
  EXPECT_EQ(space[2].configs.size(), 8u);
  const Target npu = load_target("mobile-npu");
  spec.act_bits = {8, 16};
  space = build_search_space(f.table, spec, &npu, nullptr);
  for (const auto& s : space)
    for (const auto& c : s.configs) EXPECT_EQ(c.weight_bits, 8) << config_label(c);
  spec.act_bits = {0};
  expect_error([&] { build_search_space(f.table, spec, &npu, nullptr); }, ErrorKind::kInvalidConfig,
               {"layer 'features.0' has no config", "float activations"});
  const Contract& c_header = exporter_registry().get("c-header", "test").make({})->contract();
  spec = SpaceSpec{};
  spec.weight_bits = {4, 8};
  spec.base.symmetric = false;
  expect_error([&] { build_search_space(f.table, spec, nullptr, &c_header); }, ErrorKind::kInvalidConfig,
               {"the exporter allows symmetric"});
  EXPECT_EQ(config_label(space[2].configs.back()), "w8 2:4 a16");  // the NPU space above
}

TEST(Sensitivity, MeasuresEveryOptionDeterministicallyAndLeavesTheModelAsItWas) {
  Fixture f;
  SpaceSpec spec;
  const auto space = build_search_space(f.table, spec, nullptr, nullptr);
  const at::Tensor x = f.data.inputs.slice(0, 0, 10);
  const at::Tensor before = f.model.forward(x);
  SensitivityOptions o;
  o.batch = 10;
  o.hessian_probes = 4;
  o.hessian_samples = 20;
  const SensitivityTable t = measure_sensitivity(f.model, f.table, f.data, space, o);
  EXPECT_TRUE(torch::equal(f.model.forward(x), before));
  ASSERT_EQ(t.layers.size(), 3u);
  for (const auto& l : t.layers) {
    SCOPED_TRACE(l.layer);
    ASSERT_GE(l.options.size(), 4u);
    // Fewer bits, larger weight error (dense options come first: w2, w2 2:4, w3, …, or w2, w3, w4, w8).
    const OptionImpact* w2 = t.find(l.layer, l.options.front().config);
    LayerConfig w8 = l.options.front().config;
    w8.weight_bits = 8;
    ASSERT_TRUE(t.find(l.layer, w8));
    EXPECT_GT(w2->weight_error, 4 * t.find(l.layer, w8)->weight_error);
    EXPECT_TRUE(std::isfinite(l.hessian_trace));  // inner layers of an untrained net may have negative curvature
    EXPECT_GE(w2->hessian_proxy, 0);
  }
  EXPECT_GT(t.layers[2].hessian_trace, 0);  // the classifier: cross-entropy is convex in the logits
  EXPECT_EQ(to_json(measure_sensitivity(f.model, f.table, f.data, space, o)).dump(), to_json(t).dump());
  // Written and read back.
  const SensitivityTable back = sensitivity_from_json(to_json(t), "t.json");
  EXPECT_EQ(to_json(back).dump(), to_json(t).dump());
  expect_error(
      [] {
        sensitivity_from_json(nlohmann::json{{"format", "adze.sensitivity.v1"}}, "x.json");
      },
      ErrorKind::kInvalidConfig, {"x.json", "malformed"});
  const std::string svg = sensitivity_svg(t);
  for (const auto& l : t.layers) EXPECT_NE(svg.find(">" + l.layer + "<"), std::string::npos);
}

// Hutchinson's estimate against the exact trace, summed from the Hessian's diagonal, on the classifier
// (8 x 5 weights): close with many probes.
TEST(Sensitivity, HutchinsonTraceMatchesTheExactOne) {
  Fixture f;
  SpaceSpec spec;
  spec.weight_bits = {8};
  spec.nm = {NMPattern{}};
  const auto space = build_search_space(f.table, spec, nullptr, nullptr);
  SensitivityOptions o;
  o.batch = 10;
  o.hessian_probes = 400;
  o.hessian_samples = 20;
  const SensitivityTable t = measure_sensitivity(f.model, f.table, f.data, space, o);
  const int index = f.model.find_tensor("classifier.weight");
  const at::Tensor original = f.model.tensors()[static_cast<std::size_t>(index)].value;
  const at::Tensor w = original.detach().clone().requires_grad_(true);
  f.model.set_tensor(index, w);
  const at::Tensor loss = task_loss(f.model.forward(f.data.inputs.slice(0, 0, 20)), f.data.targets.slice(0, 0, 20));
  const at::Tensor g = torch::autograd::grad({loss}, {w}, {}, true, true)[0].reshape({-1});
  double exact = 0;
  for (int64_t i = 0; i < g.numel(); ++i)
    exact += torch::autograd::grad({g[i]}, {w}, {}, true)[0].reshape({-1})[i].item<double>();
  f.model.set_tensor(index, original);
  EXPECT_NEAR(t.layers[2].hessian_trace, exact, 0.15 * std::abs(exact));
}

TEST(Budget, ParsesMetricsAndUnitsAndNamesWhatIsWrong) {
  EXPECT_DOUBLE_EQ(parse_budget("size=200KB").value, 200e3);
  EXPECT_DOUBLE_EQ(parse_budget("size=1.5MiB").value, 1.5 * 1048576);
  EXPECT_DOUBLE_EQ(parse_budget("latency=2ms").value, 2e-3);
  EXPECT_DOUBLE_EQ(parse_budget("latency=250us").value, 250e-6);
  EXPECT_DOUBLE_EQ(parse_budget("energy=1mJ").value, 1e-3);
  EXPECT_EQ(parse_budget("energy=1mJ").metric, Budget::Metric::kEnergy);
  expect_error([] { parse_budget("size=200"); }, ErrorKind::kInvalidArgument, {"'size=200'", "unknown unit ''"});
  expect_error([] { parse_budget("size=200kg"); }, ErrorKind::kInvalidArgument, {"unknown unit 'kg'"});
  expect_error([] { parse_budget("speed=2ms"); }, ErrorKind::kInvalidArgument, {"unknown metric 'speed'"});
  expect_error([] { parse_budget("latency"); }, ErrorKind::kInvalidArgument, {"no '='"});
  expect_error([] { parse_budget("latency=-2ms"); }, ErrorKind::kInvalidArgument, {"positive"});
  expect_error([] { parse_budget("latency=ms"); }, ErrorKind::kInvalidArgument, {"no number"});
}

// A random problem: 5 layers x 4 options, cost falling and loss rising with compression.
Problem random_problem(uint64_t seed, double budget_share) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Problem p;
  double lo = 0, hi = 0;
  for (int l = 0; l < 5; ++l) {
    p.layers.push_back("layer" + std::to_string(l));
    std::vector<LayerConfig> configs;
    std::vector<double> loss, cost;
    const double size = 1 + 10 * u(rng);
    for (int bits : {2, 3, 4, 8}) {
      LayerConfig c;
      c.weight_bits = bits;
      configs.push_back(c);
      cost.push_back(size * bits * (0.8 + 0.4 * u(rng)));
      loss.push_back(u(rng) / (bits * bits));
    }
    lo += *std::min_element(cost.begin(), cost.end());
    hi += *std::max_element(cost.begin(), cost.end());
    p.configs.push_back(configs);
    p.loss.push_back(loss);
    p.cost.push_back(cost);
  }
  p.budget = lo + budget_share * (hi - lo);
  return p;
}

TEST(Searchers, DynamicProgrammingFindsTheOptimumAndGreedyAFeasiblePlan) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    SCOPED_TRACE(seed);
    const Problem p = random_problem(seed, 0.4);
    const auto dp = searchers().create("dp", {{"buckets", 100000}}, "test")->run(p, {});
    const auto greedy = searchers().create("greedy", nlohmann::json::object(), "test")->run(p, {});
    // Brute force over all 4^5 choices.
    double optimum = 1e300;
    Choice c(5, 0);
    for (int i = 0; i < 1024; ++i) {
      for (int l = 0, k = i; l < 5; ++l, k /= 4) c[static_cast<std::size_t>(l)] = k % 4;
      if (p.total_cost(c) <= p.budget) optimum = std::min(optimum, p.total_loss(c));
    }
    ASSERT_TRUE(dp.satisfiable);
    EXPECT_LE(dp.best.cost, p.budget);
    EXPECT_NEAR(dp.best.loss, optimum, 1e-3 * optimum);
    EXPECT_LE(greedy.best.cost, p.budget);
    EXPECT_GE(greedy.best.loss, dp.best.loss - 1e-12);
    for (std::size_t i = 1; i < dp.front.size(); ++i) {  // the front: cost up, loss down
      EXPECT_GT(dp.front[i].cost, dp.front[i - 1].cost);
      EXPECT_LT(dp.front[i].loss, dp.front[i - 1].loss);
    }
  }
}

TEST(Searchers, AnUnsatisfiableBudgetGivesTheClosestPlan) {
  Problem p = random_problem(1, 0.0);
  p.budget = p.total_cost(p.cheapest()) * 0.5;
  for (const auto& name : {"dp", "greedy"}) {
    const auto r = searchers().create(name, nlohmann::json::object(), "test")->run(p, {});
    EXPECT_FALSE(r.satisfiable) << name;
    EXPECT_EQ(r.best.choice, p.cheapest()) << name;
  }
  expect_error([] { searchers().create("anneal", nlohmann::json::object(), "--algo"); }, ErrorKind::kInvalidConfig,
               {"unknown searcher 'anneal'", "greedy", "dp"});
}

TEST(Searchers, UniformBaselinesFallBackToDenseWhereAPatternCannotApply) {
  Fixture f;
  const auto space = build_search_space(f.table, SpaceSpec{}, nullptr, nullptr);
  Problem p;
  for (const auto& s : space) {
    p.layers.push_back(s.layer);
    p.configs.push_back(s.configs);
    p.loss.emplace_back(s.configs.size(), 0.0);
    std::vector<double> cost;
    for (const auto& c : s.configs) cost.push_back(c.weight_bits * (c.nm.enabled() ? 0.5 : 1.0));
    p.cost.push_back(cost);
  }
  const auto baselines = uniform_baselines(p);
  ASSERT_EQ(baselines.size(), 8u);  // w2 w3 w4 w8, each dense and 2:4
  const auto it =
      std::find_if(baselines.begin(), baselines.end(), [](const Point& x) { return x.label == "uniform w4 2:4"; });
  ASSERT_NE(it, baselines.end());
  EXPECT_EQ(config_label(p.configs[0][static_cast<std::size_t>(it->choice[0])]), "w4");  // features.0: dense
  EXPECT_EQ(config_label(p.configs[2][static_cast<std::size_t>(it->choice[2])]), "w4 2:4");
}

}  // namespace
}  // namespace adze
