#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "compress/activation_quant.h"
#include "core/files.h"
#include "exporters/exporter.h"
#include "hardware/target.h"
#include "model/frontend.h"
#include "model/model.h"
#include "search/budget.h"
#include "search/front_plot.h"
#include "search/measured_loss.h"
#include "search/search_space.h"
#include "search/search_state.h"
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

  /// The sensitivity of `space` in batches of 10 with `probes` Hutchinson probes, checking that the model gives
  /// the same outputs afterwards.
  SensitivityTable measure(const std::vector<LayerOptions>& space, int64_t probes) {
    const at::Tensor x = data.inputs.slice(0, 0, 10);
    const at::Tensor before = model.forward(x);
    SensitivityOptions o;
    o.batch = 10;
    o.hessian_probes = probes;
    o.hessian_samples = 20;
    SensitivityTable t = measure_sensitivity(model, table, data, space, o);
    EXPECT_TRUE(torch::equal(model.forward(x), before));
    return t;
  }
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

// Decompositions enter the space per layer where they apply, are measured like any option, and survive the
// sensitivity cache; the flag's values are checked.
TEST(SearchSpace, OffersDecompositionsWhereTheyApply) {
  Fixture f;
  const SpaceSpec spec = space_spec({8}, {"none"}, {0}, {"none", "lowrank:0.5", "smartdeal:3"});
  const auto space = build_search_space(f.table, spec, nullptr, nullptr);
  std::vector<std::string> labels;
  for (const auto& c : space[0].configs) labels.push_back(config_label(c));
  EXPECT_EQ(labels, (std::vector<std::string>{"w8", "w8 rank0.50", "w8 smartdeal3"}));
  ASSERT_EQ(space[1].configs.size(), 2u);  // features.3 is depthwise: no lowrank
  EXPECT_NE(space[1].excluded[0].find("grouped convolution"), std::string::npos) << space[1].excluded[0];
  EXPECT_EQ(space[2].configs.size(), 2u);  // the classifier's 8 inputs: no basis of 3
  const SensitivityTable t = f.measure(space, 0);
  const OptionImpact* lowrank = t.find("features.0", space[0].configs[1]);
  ASSERT_TRUE(lowrank);
  EXPECT_GT(lowrank->weight_error, t.find("features.0", space[0].configs[0])->weight_error);
  const SensitivityTable back = sensitivity_from_json(to_json(t), "t.json");
  EXPECT_EQ(back.find("features.0", space[0].configs[1])->loss_delta, lowrank->loss_delta);
  for (const char* bad : {"tucker", "lowrank", "lowrank:1.5", "monarch:2.5", "smartdeal:x", "none:3"})
    expect_error([&] { space_spec({8}, {"none"}, {0}, {bad}); }, ErrorKind::kInvalidArgument,
                 {"--decompose '" + std::string(bad) + "'"});
}

TEST(Sensitivity, MeasuresEveryOptionDeterministicallyAndLeavesTheModelAsItWas) {
  Fixture f;
  SpaceSpec spec;
  const auto space = build_search_space(f.table, spec, nullptr, nullptr);
  const SensitivityTable t = f.measure(space, 4);
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
  EXPECT_EQ(to_json(f.measure(space, 4)).dump(), to_json(t).dump());
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

TEST(Sensitivity, ActivationBitsAddTheDeltaOfTheLayersInputQuantizedAlone) {
  Fixture f;
  SpaceSpec spec;
  spec.weight_bits = {8};
  spec.nm = {NMPattern{}};
  spec.act_bits = {0, 8};
  const auto space = build_search_space(f.table, spec, nullptr, nullptr);
  const SensitivityTable t = f.measure(space, 0);
  EXPECT_EQ(f.model.graph().toString(), load_torchscript(fixture("cnn_bn_traced.pt"), {{10, 3, 16, 16}, "float32"})
                                            .graph()
                                            .toString());  // no fake-quant left behind
  for (const auto& l : t.layers) {
    SCOPED_TRACE(l.layer);
    LayerConfig w8 = spec_configs(spec)[0], w8a8 = spec_configs(spec)[1];
    ASSERT_EQ(w8a8.act_bits, 8);
    const OptionImpact *weights = t.find(l.layer, w8), *both = t.find(l.layer, w8a8);
    ASSERT_TRUE(weights && both);
    EXPECT_NE(weights, both);
    EXPECT_EQ(both->weight_error, weights->weight_error);
    // By hand: the layer's input alone fake-quantized at 8 bits on a copy of the model.
    Model copy = f.model.clone();
    CompressionContext c;
    c.model = &copy;
    c.table = f.table;
    for (const Layer& layer : f.table.layers) c.plan.layers[layer.name] = LayerConfig{};
    c.plan.layers[l.layer].act_bits = 8;
    c.train_data = &f.data;
    ASSERT_EQ(quantize_activations(c, ActivationObserver{"minmax", 99.99, 8, "inputs"}).taps, 1);
    const double act = evaluate(copy, f.data, {10, false}).cross_entropy - t.base.cross_entropy;
    EXPECT_NEAR(both->loss_delta, weights->loss_delta + act, 1e-9);
    EXPECT_NE(act, 0.0);
  }
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

// A problem over a real space: no predicted loss, cost = bits per kept weight.
Problem problem_of(const std::vector<LayerOptions>& space) {
  Problem p;
  for (const auto& s : space) {
    p.layers.push_back(s.layer);
    p.configs.push_back(s.configs);
    p.loss.emplace_back(s.configs.size(), 0.0);
    std::vector<double> cost;
    for (const auto& c : s.configs) cost.push_back(c.weight_bits * (c.nm.enabled() ? 0.5 : 1.0));
    p.cost.push_back(cost);
  }
  return p;
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
  EXPECT_EQ(parse_budget("bits=3.5").metric, Budget::Metric::kBits);
  EXPECT_DOUBLE_EQ(parse_budget("bits=3.5").value, 3.5);
  expect_error([] { parse_budget("bits=3b"); }, ErrorKind::kInvalidArgument, {"unknown unit 'b' for bits"});
  EXPECT_DOUBLE_EQ(parse_duration("90s", "--time-budget"), 90);
  EXPECT_DOUBLE_EQ(parse_duration("2min", "--time-budget"), 120);
  EXPECT_DOUBLE_EQ(parse_duration("1.5", "--time-budget"), 1.5);
  expect_error([] { parse_duration("10 parsecs", "--time-budget"); }, ErrorKind::kInvalidArgument,
               {"--time-budget '10 parsecs'", "90s"});
  expect_error([] { parse_duration("-3s", "--time-budget"); }, ErrorKind::kInvalidArgument, {"positive"});
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

// The optimum of a random problem by brute force over its 4^5 choices.
double brute_force(const Problem& p) {
  double optimum = 1e300;
  Choice c(5, 0);
  for (int i = 0; i < 1024; ++i) {
    for (int l = 0, k = i; l < 5; ++l, k /= 4) c[static_cast<std::size_t>(l)] = k % 4;
    if (p.total_cost(c) <= p.budget) optimum = std::min(optimum, p.total_loss(c));
  }
  return optimum;
}

TEST(Searchers, EvolutionAndTheAgentFindGoodPlansWithinTheBudgetDeterministically) {
  int evo_optimal = 0, rl_optimal = 0;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    SCOPED_TRACE(seed);
    const Problem p = random_problem(seed, 0.4);
    const double optimum = brute_force(p);
    double best_uniform = 1e300;
    for (const auto& u : uniform_baselines(p))
      if (u.cost <= p.budget) best_uniform = std::min(best_uniform, u.loss);
    SearchOptions o;
    o.seed = seed;
    const auto evo = searchers().create("evo", nlohmann::json::object(), "test");
    const auto rl = searchers().create("rl", {{"episodes", 100}}, "test");
    for (const auto* searcher : {evo.get(), rl.get()}) {
      const SearchResult r = searcher->run(p, o);
      ASSERT_TRUE(r.satisfiable);
      EXPECT_LE(r.best.cost, p.budget);
      EXPECT_NEAR(r.best.loss, p.total_loss(r.best.choice), 1e-12);
      EXPECT_GE(r.best.loss, optimum - 1e-12);
      EXPECT_LE(r.best.loss, best_uniform + 1e-12);  // never worse than the plan a user would try by hand
      const SearchResult again = searcher->run(p, o);
      EXPECT_EQ(again.best.choice, r.best.choice);
      EXPECT_EQ(again.evaluated, r.evaluated);
      (searcher == evo.get() ? evo_optimal : rl_optimal) += r.best.loss <= optimum * (1 + 1e-9);
    }
  }
  EXPECT_GE(evo_optimal, 7) << "NSGA-II found the optimum of only " << evo_optimal << " of 8 problems";
  EXPECT_GE(rl_optimal, 5) << "the agent found the optimum of only " << rl_optimal << " of 8 problems";
}

TEST(Searchers, MeasureStopAndProgressHooksMakeThemAnytimeAndResumable) {
  const Problem p = random_problem(3, 0.4);
  for (const auto& name : {"evo", "rl"}) {
    SCOPED_TRACE(name);
    const auto searcher = searchers().create(name, nlohmann::json::object(), "test");
    EXPECT_TRUE(searcher->measures());
    // A measure that disagrees with the table: the searcher must report what was measured.
    std::map<Choice, double> memo;
    int64_t calls = 0;
    SearchOptions o;
    o.measure = [&](const Choice& c) {
      ++calls;
      return memo[c] = p.total_loss(c) * 2 + 1;
    };
    int rounds = 0;
    o.progress = [&](const SearchResult& r) {
      ++rounds;
      EXPECT_LE(r.best.cost, p.budget);
    };
    o.seed = 5;
    const SearchResult full = searcher->run(p, o);
    EXPECT_EQ(rounds, searcher->rounds());
    EXPECT_NEAR(full.best.loss, p.total_loss(full.best.choice) * 2 + 1, 1e-12);
    EXPECT_EQ(calls, full.evaluated);
    // Stopped after two rounds, then replayed from the memo (a resumed search): no new measurement until it
    // passes the point where it stopped, and the same result as the uninterrupted run.
    std::map<Choice, double> partial;
    SearchOptions stopped = o;
    stopped.measure = [&](const Choice& c) { return partial[c] = p.total_loss(c) * 2 + 1; };
    rounds = 0;
    stopped.stop = [&] { return rounds >= 2; };
    const SearchResult early = searcher->run(p, stopped);
    EXPECT_EQ(rounds, 2);
    EXPECT_LE(early.best.cost, p.budget);
    int64_t new_calls = 0;
    SearchOptions resumed = o;
    resumed.measure = [&](const Choice& c) {
      if (const auto it = partial.find(c); it != partial.end()) return it->second;
      ++new_calls;
      return p.total_loss(c) * 2 + 1;
    };
    rounds = 0;
    const SearchResult after = searcher->run(p, resumed);
    EXPECT_EQ(after.best.choice, full.best.choice);
    EXPECT_EQ(new_calls + static_cast<int64_t>(partial.size()), full.evaluated);
  }
}

TEST(Searchers, WithinBudgetAndAlternatives) {
  Problem p;
  p.layers = {"a", "b"};
  LayerConfig w2, w4, w8;
  w2.weight_bits = 2;
  w4.weight_bits = 4;
  w8.weight_bits = 8;
  p.configs = {{w2, w4, w8}, {w2, w4, w8}};
  p.cost = {{2, 4, 8}, {2, 4, 8}};
  p.loss = {{0.5, 0.1, 0}, {0.9, 0.02, 0}};  // b's 4 -> 2 costs far more than a's
  p.budget = 9;
  EXPECT_EQ(within_budget(p, {2, 2}), (Choice{1, 1}));  // 16 -> 8 + 4 (b gives up less) -> 4 + 4
  p.budget = 7;
  EXPECT_EQ(within_budget(p, {2, 2}), (Choice{0, 1}));
  p.budget = 1;
  EXPECT_EQ(within_budget(p, {2, 2}), p.cheapest());
  p.budget = 9;
  EXPECT_EQ(within_budget(p, {2, 2}, 1), (Choice{0, 2}));  // b held at w8: a gives up all it can, still over

  // Runners-up to the best plan {w4, w4} (cost 8): its neighbours within the budget and the front's points,
  // ranked by loss; a neighbour that cannot be moved within the budget around its changed layer is left out.
  const std::vector<Point> front = {{{0, 0}, 1.4, 4, "dp"}, {{1, 1}, 0.12, 8, "dp"}, {{2, 2}, 0, 16, "dp"}};
  std::vector<Point> alt = alternatives(p, {1, 1}, front, 5);
  ASSERT_EQ(alt.size(), 3u);
  EXPECT_EQ(alt[0].choice, (Choice{0, 1}));
  EXPECT_EQ(alt[1].choice, (Choice{1, 0}));
  EXPECT_EQ(alt[2].choice, (Choice{0, 0}));
  EXPECT_EQ(alt[0].label, "alternative 1");
  EXPECT_DOUBLE_EQ(alt[1].loss, 1.0);
  EXPECT_DOUBLE_EQ(alt[1].cost, 6);
  alt = alternatives(p, {1, 1}, front, 2, [&](const Choice& c) { return -p.total_loss(c); });  // measured order
  ASSERT_EQ(alt.size(), 2u);
  EXPECT_EQ(alt[0].choice, (Choice{0, 0}));
  EXPECT_EQ(alt[1].choice, (Choice{1, 0}));
  expect_error(
      [] {
        searchers().create("evo", {{"population", 1}}, "--algo");
      },
      ErrorKind::kInvalidConfig, {"--algo (evo)", "'population' must be in [2, 1000000], found 1"});
  expect_error(
      [] {
        searchers().create("rl", {{"episodes", "many"}}, "--algo");
      },
      ErrorKind::kInvalidConfig, {"episodes"});
}

TEST(SearchState, ResumesOnlyTheSameSearchAndNamesWhatDiffers) {
  const testing::TempDir tmp;
  const std::string dir = tmp.path();
  const nlohmann::json identity = {{"sensitivity", "abc"}, {"target", "a100"}, {"seed", 0}};
  expect_error([&] { resume_search_state(dir + "/none", identity); }, ErrorKind::kInvalidArgument,
               {"no such directory"});
  expect_error([&] { resume_search_state(dir, identity); }, ErrorKind::kInvalidArgument, {"not a search directory"});
  SearchState s;
  s.identity = identity;
  s.measured[{0, 1, 2}] = 0.25;
  write_file_atomically(search_state_path(dir), to_json(s).dump());
  const SearchState back = resume_search_state(dir, identity);
  EXPECT_EQ(back.measured.at({0, 1, 2}), 0.25);
  nlohmann::json other = identity;
  other["target"] = "cortex-m7";
  expect_error([&] { resume_search_state(dir, other); }, ErrorKind::kInvalidArgument,
               {"searched with target \"a100\", not \"cortex-m7\""});
  write_file_atomically(search_state_path(dir), "{\"format\": \"adze.search-state.v1\", \"identity\": ");
  expect_error([&] { resume_search_state(dir, identity); }, ErrorKind::kInvalidArgument, {"malformed"});
  // Found by fuzzing: a choice out of int's range (converting it was undefined behaviour).
  write_file_atomically(search_state_path(dir),
                        "{\"format\": \"adze.search-state.v1\", \"identity\": {}, "
                        "\"measured\": [{\"choice\": [1e73], \"loss\": 0}], \"confirmed\": []}");
  expect_error([&] { resume_search_state(dir, identity); }, ErrorKind::kInvalidArgument,
               {"malformed", "not a list of option indices"});
}

TEST(MeasuredLoss, MeasuresWholeChoicesAndLeavesTheModelAsItWas) {
  Fixture f;
  const Problem p = problem_of(build_search_space(f.table, SpaceSpec{}, nullptr, nullptr));
  const at::Tensor x = f.data.inputs.slice(0, 0, 10);
  const at::Tensor before = f.model.forward(x);
  const Metrics base = evaluate(f.model, f.data, {10, false});
  MeasuredLoss measured(f.model, f.table, f.data, p, 10, base);
  auto all = [&](int bits) {
    Choice c;
    for (const auto& configs : p.configs)
      for (std::size_t o = 0; o < configs.size(); ++o)
        if (configs[o].weight_bits == bits && !configs[o].nm.enabled()) c.push_back(static_cast<int>(o));
    return c;
  };
  // The same as putting every projection into the model by hand.
  for (int bits : {2, 8}) {
    const Choice c = all(bits);
    const double got = measured(c);
    std::vector<at::Tensor> saved;
    for (std::size_t l = 0; l < f.table.layers.size(); ++l) {
      const int i = f.model.find_tensor(f.table.layers[l].weight);
      saved.push_back(f.model.tensors()[static_cast<std::size_t>(i)].value);
      f.model.set_tensor(
          i, project(saved.back(), f.table.layers[l], p.configs[l][static_cast<std::size_t>(c[l])]).decode());
    }
    const Metrics by_hand = evaluate(f.model, f.data, {10, false});
    for (std::size_t l = 0; l < f.table.layers.size(); ++l)
      f.model.set_tensor(f.model.find_tensor(f.table.layers[l].weight), saved[l]);
    EXPECT_DOUBLE_EQ(got, by_hand.cross_entropy - base.cross_entropy) << bits;
    EXPECT_EQ(measured.metrics(c).top1, by_hand.top1);
  }
  EXPECT_GT(std::abs(measured(all(2))), std::abs(measured(all(8))));
  EXPECT_TRUE(torch::equal(f.model.forward(x), before));
}

TEST(Searchers, AnUnsatisfiableBudgetGivesTheClosestPlan) {
  Problem p = random_problem(1, 0.0);
  p.budget = p.total_cost(p.cheapest()) * 0.5;
  for (const auto& name : {"dp", "greedy", "evo", "rl"}) {
    const auto r = searchers().create(name, nlohmann::json::object(), "test")->run(p, {});
    EXPECT_FALSE(r.satisfiable) << name;
    EXPECT_EQ(r.best.choice, p.cheapest()) << name;
  }
  expect_error([] { searchers().create("anneal", nlohmann::json::object(), "--algo"); }, ErrorKind::kInvalidConfig,
               {"unknown searcher 'anneal'", "greedy", "dp"});
}

TEST(Searchers, UniformBaselinesFallBackToDenseWhereAPatternCannotApply) {
  Fixture f;
  const Problem p = problem_of(build_search_space(f.table, SpaceSpec{}, nullptr, nullptr));
  const auto baselines = uniform_baselines(p);
  ASSERT_EQ(baselines.size(), 8u);  // w2 w3 w4 w8, each dense and 2:4
  const auto it =
      std::find_if(baselines.begin(), baselines.end(), [](const Point& x) { return x.label == "uniform w4 2:4"; });
  ASSERT_NE(it, baselines.end());
  EXPECT_EQ(config_label(p.configs[0][static_cast<std::size_t>(it->choice[0])]), "w4");  // features.0: dense
  EXPECT_EQ(config_label(p.configs[2][static_cast<std::size_t>(it->choice[2])]), "w4 2:4");
}

// Every mark lies on the page (760 x 480), the text is escaped, no NaN or Inf is drawn.
TEST(SearchPlots, DrawTheFrontAndTheConfirmedPlansOnThePageWithEscapedText) {
  auto check = [](const std::string& svg, const std::vector<std::string>& texts) {
    EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
    EXPECT_EQ(svg.find("</svg>"), svg.size() - 7);
    EXPECT_EQ(svg.find("nan"), std::string::npos);
    EXPECT_EQ(svg.find("inf"), std::string::npos);
    for (const auto& t : texts) EXPECT_NE(svg.find(t), std::string::npos) << t;
    for (const auto& [attribute, page] : {std::pair<std::string, double>{" cx=\"", 760}, {" cy=\"", 480}})
      for (std::size_t at = svg.find(attribute); at != std::string::npos; at = svg.find(attribute, at + 1)) {
        const double v = std::stod(svg.substr(at + attribute.size()));
        EXPECT_GE(v, 0.0) << attribute;
        EXPECT_LE(v, page) << attribute;
      }
  };
  const std::vector<Point> front = {{{0, 0}, 0.30, 100, ""}, {{1, 0}, 0.10, 150, ""}, {{1, 1}, 0.02, 220, ""}};
  const std::vector<Point> baselines = {{{0, 0}, 0.30, 100, "uniform w2"}, {{1, 1}, 0.02, 220, "uniform w8"}};
  check(front_svg(front, baselines, Point{{1, 0}, 0.10, 150, "dp"}, 160, "size (bytes)", "loss", "size <= 160B"),
        {"size &lt;= 160B", "uniform w2", "chosen (dp)", "budget"});
  std::vector<ConfirmedMark> marks = {{"searched", 150, 0.915, 0.913, 0.918, false, true},
                                      {"alternative 1", 140, 0.912, 0.912, 0.912, false, false},
                                      {"uniform w3 & co", 130, 0.9, 0.89, 0.91, true, false}};
  const std::string svg = confirmed_svg(marks, 160, 0.917, "size (bytes)", "top-1 (%)", "a <title>");
  check(svg, {"a &lt;title&gt;", "written (searched)", "alternative 1", "uniform w3 &amp; co", "uncompressed"});
  std::size_t ranges = 0;  // the two plans whose runs differ get a range
  for (std::size_t at = svg.find("stroke=\"#4a78b5\"/>"); at != std::string::npos;
       at = svg.find("stroke=\"#4a78b5\"/>", at + 1))
    ++ranges;
  EXPECT_EQ(ranges, 2u);
  // One plan of one run, at the budget and at fp32: still a page with its axes spread around the point.
  check(confirmed_svg({{"searched", 160, 0.917, 0.917, 0.917, false, true}}, 160, 0.917, "cost", "top-1", "t"),
        {"written (searched)"});
}

}  // namespace
}  // namespace adze
