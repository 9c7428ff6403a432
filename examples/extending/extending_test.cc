// The worked examples of docs/design.md, "How to add": each kind's example in its own file, registered the way
// the built-ins are (the list of core/builtins.def, plus the one line a built-in would add there), then used.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "compress/pass.h"
#include "compress/scheme.h"
#include "core/error.h"
#include "exporters/compressed_fixture.h"
#include "exporters/exporter.h"
#include "exporters/runner.h"
#include "hardware/cost_model.h"
#include "model/frontend.h"
#include "model/layer_table.h"
#include "search/searcher.h"
#include "tests/test_util.h"

namespace adze {

namespace example {
PassRegistry::Entry zero_share_pass_entry();
Registry<Searcher>::Entry random_entry();
Registry<CostModel>::Entry flat_entry();
Registry<Exporter>::Entry frozen_exporter_entry();
SchemeTraits ternary_scheme();
}  // namespace example

#define ADZE_PASS(entry) PassRegistry::Entry entry();
#define ADZE_SEARCHER(entry) Registry<Searcher>::Entry entry();
#define ADZE_COST_MODEL(entry) Registry<CostModel>::Entry entry();
#define ADZE_EXPORTER(entry) Registry<Exporter>::Entry entry();
#define ADZE_SCHEME(row) SchemeTraits row();
#include "core/builtins.def"

namespace {

using testing::expect_error;
using testing::fixture;

TEST(Extending, APassIsItsOwnFilePlusOneLineOfTheList) {
  const PassRegistry passes("pass", {
#define ADZE_PASS(entry) entry(),
#include "core/builtins.def"
                                        example::zero_share_pass_entry()});
  ASSERT_EQ(passes.entries().size(), pass_registry().entries().size() + 1);
  // Its options are checked as a built-in's are.
  expect_error(
      [&] {
        passes.create("example.zero-share", {{"at_least", "half"}}, "test");
      },
      ErrorKind::kInvalidConfig, {"at_least", "number"});
  // It runs on what the built-in passes made: 2:4 on the classifier leaves at least half of it zero.
  Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{2, 3, 16, 16}, "float32"});
  CompressionContext c;
  c.model = &model;
  c.table = build_layer_table(model);
  c.plan = resolve_plan(
      parse_plan(nlohmann::ordered_json::parse(R"({"layers": {"classifier": {"weight_bits": 4, "nm": "2:4"}}})"),
                 "plan.json"),
      c.table, "plan.json");
  run_pipeline(
      parse_pipeline(nlohmann::json::parse(R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights"]})"), "p.json"),
      c);
  const std::size_t before = c.notes.size();  // what the built-in passes noted
  passes.create("example.zero-share", {{"at_least", 0.5}}, "test")->run(c);
  ASSERT_EQ(c.notes.size(), before + 1);  // the classifier only: the other layers stay dense
  EXPECT_EQ(c.notes.back().rfind("layer 'classifier': ", 0), 0u) << c.notes.back();
}

TEST(Extending, ASearcherIsItsOwnFilePlusOneLineOfTheList) {
  const Registry<Searcher> all("searcher", {
#define ADZE_SEARCHER(entry) entry(),
#include "core/builtins.def"
                                               example::random_entry()});
  // Three layers, two options each: (loss, cost) = (0, 4) or (1, 1).
  Problem p;
  for (const char* name : {"a", "b", "c"}) {
    p.layers.push_back(name);
    p.configs.push_back({LayerConfig{}, LayerConfig{}});
    p.configs.back()[1].weight_bits = 4;
    p.loss.push_back({0.0, 1.0});
    p.cost.push_back({4.0, 1.0});
  }
  p.budget = 6;
  const auto searcher = all.create("example.random", {{"draws", 40}}, "test");
  SearchOptions o;
  o.seed = 7;
  int64_t rounds = 0;
  o.progress = [&](const SearchResult&) { ++rounds; };
  const SearchResult r = searcher->run(p, o);
  EXPECT_EQ(rounds, searcher->rounds());
  ASSERT_TRUE(r.satisfiable);
  EXPECT_LE(r.best.cost, p.budget);
  EXPECT_EQ(r.best.loss, 2.0);  // one layer at (0, 4), two at (1, 1): the least loss within 6
  // The same seed gives the same choice.
  EXPECT_EQ(searcher->run(p, o).best.choice, r.best.choice);
}

TEST(Extending, ACostModelIsItsOwnFilePlusOneLineOfTheList) {
  const Registry<CostModel> all("cost model", {
#define ADZE_COST_MODEL(entry) entry(),
#include "core/builtins.def"
                                                  example::flat_entry()});
  const Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{1, 3, 16, 16}, "float32"});
  const LayerTable table = build_layer_table(model);
  const Layer& layer = table.layers.back();
  LayerConfig int4;
  int4.weight_bits = 4;
  const LayerCost c =
      all.create("example.flat", {{"macs_per_s", 2e9}}, "test")->layer(load_target("host"), layer, int4, 3);
  EXPECT_DOUBLE_EQ(c.latency_s, static_cast<double>(layer.macs) * 3 / 2e9);
  EXPECT_EQ(c.precision, "int4");
  EXPECT_GT(c.weight_bytes, 0);
}

TEST(Extending, AnExporterIsItsOwnFilePlusOneLineOfTheList) {
  const Registry<Exporter> all("exporter", {
#define ADZE_EXPORTER(entry) entry(),
#include "core/builtins.def"
                                               example::frozen_exporter_entry()});
  ASSERT_EQ(all.entries().size(), exporter_registry().entries().size() + 1);
  testing::Compressed c;
  const CompressedModel m = load_compressed(c.dir, 8);
  const auto exporter = all.create("example.frozen", {}, "test");
  EXPECT_TRUE(check_contract(exporter->contract(), m).empty());
  const std::string path = c.tmp.file("model.frozen.pt");
  exporter->write(m, path);
  ASSERT_TRUE(exporter->recognizes(path));
  EXPECT_FALSE(exporter->recognizes(c.tmp.file("model.pt")));
  // Its runner computes what the simulation does, at any number of samples.
  const auto runner = exporter->open(path, {});
  EXPECT_EQ(runner->batch(), 8);
  torch::NoGradGuard no_grad;
  const at::Tensor x = torch::randn({11, 3, 16, 16});
  EXPECT_TRUE(torch::allclose(runner->run(x), m.model.forward(x), 1e-5, 1e-5));
  // A file of another kind is refused with one line.
  std::ofstream(c.tmp.file("junk.frozen.pt")) << "not a model";
  expect_error([&] { exporter->open(c.tmp.file("junk.frozen.pt"), {}); }, ErrorKind::kIo, {"junk.frozen.pt"});
}

TEST(Extending, AWeightSchemeIsItsOwnFilePlusOneRowOfTheTable) {
  std::vector<SchemeTraits> table = {
#define ADZE_SCHEME(row) row(),
#include "core/builtins.def"
      example::ternary_scheme()};
  ASSERT_EQ(table.size(), schemes().size() + 1);
  for (std::size_t i = 0; i < table.size(); ++i) EXPECT_EQ(static_cast<std::size_t>(table[i].id), i);  // ids in order
  const SchemeTraits& ternary = table.back();
  LayerConfig config;
  config.weight_bits = 2;
  torch::manual_seed(0);
  const at::Tensor rows = torch::randn({6, 64});
  const GridRows g = ternary.project(rows, config, {}, {});
  EXPECT_EQ(g.codes.min().item<int64_t>(), ternary.min_code(2, true));
  EXPECT_EQ(g.codes.max().item<int64_t>(), ternary.max_code(2, true));
  // Each row's α is the mean magnitude of the weights it keeps, which lie above 0.7 · mean|w|.
  const at::Tensor kept = g.codes.ne(0);
  const at::Tensor alpha = (rows.abs() * kept).sum(1) / kept.sum(1);
  EXPECT_TRUE(torch::allclose(g.scale, alpha));
  for (int64_t r = 0; r < rows.size(0); ++r)
    EXPECT_TRUE(rows[r].abs().masked_select(kept[r]).gt(0.7 * rows[r].abs().mean()).all().item<bool>());
  // Decoding, the range and the packed runtime's element decoder agree.
  const at::Tensor decoded = ternary.decode(g, config);
  EXPECT_TRUE(torch::equal(decoded, g.codes.to(torch::kFloat) * g.scale.unsqueeze(1)));
  const auto [lo, hi] = ternary.range(g, config);
  EXPECT_TRUE(decoded.ge(lo).logical_and(decoded.le(hi)).all().item<bool>());
  EXPECT_EQ(ternary.value(-1, 0.5f, 0.0f, 2), -0.5f);
  // It beats zeroing: the projection reduces the error below ‖w‖².
  EXPECT_LT((decoded - rows).pow(2).sum().item<double>(), rows.pow(2).sum().item<double>() * 0.5);
  // Given scales are used as they are (fine-tuning with learned scales).
  const GridRows given = ternary.project(rows, config, {}, GridRows{{}, g.scale * 2, g.zero_point});
  EXPECT_TRUE(torch::equal(given.scale, g.scale * 2));
}

}  // namespace
}  // namespace adze
