#include <gtest/gtest.h>
#include <torch/torch.h>

#include "compress/frontend.h"
#include "compress/model.h"
#include "exporters/exporter.h"
#include "hardware/target.h"
#include "search/search_space.h"
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

}  // namespace
}  // namespace adze
