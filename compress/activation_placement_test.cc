#include "compress/activation_placement.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include "compress/activation_quant.h"
#include "compress/pass.h"
#include "data/dataset.h"
#include "model/frontend.h"
#include "model/model.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::fixture;

constexpr const char* kFakeQuant = "aten::fake_quantize_per_tensor_affine";

struct Calibrated {
  Model model;
  int taps = 0;
};

// torchvision's resnet18 architecture at base width 4 (tests/data), W8A8, calibrated with `placement`.
Calibrated calibrate(const std::string& file, const std::string& placement) {
  Calibrated r{load_torchscript(fixture(file), {{4, 3, 32, 32}, "float32"})};
  torch::manual_seed(0);
  Dataset data;
  data.inputs = torch::randn({16, 3, 32, 32});
  data.targets = torch::zeros({16}, torch::kLong);
  data.num_classes = 10;
  CompressionContext c;
  c.model = &r.model;
  c.table = build_layer_table(r.model);
  c.data = &data;
  c.plan = resolve_plan(
      parse_plan(nlohmann::ordered_json::parse(R"({"defaults": {"weight_bits": 8, "act_bits": 8}})"), "plan.json"),
      c.table, "plan.json");
  run_pipeline(
      parse_pipeline(nlohmann::ordered_json::parse(R"({"passes": ["fold-bn", "quantize.weights"]})"), "p.json"), c);
  ActivationObserver observer;
  observer.placement = placement;
  r.taps = quantize_activations(c, observer).taps;
  return r;
}

// The operands of the graph's residual adds that come from a fake-quant.
std::pair<int, int> quantized_add_operands(const Model& m) {
  int adds = 0, quantized = 0;
  for (const torch::jit::Node* n : m.graph().nodes()) {
    const std::string k = n->kind().toQualString();
    if (k != "aten::add" && k != "aten::add_") continue;
    ++adds;
    for (std::size_t i = 0; i < 2; ++i)
      quantized += n->input(i)->node()->kind().toQualString() == std::string(kFakeQuant);
  }
  return {adds, quantized};
}

TEST(ActivationPlacement, IntegerPlacementQuantizesEveryResidualOperand) {
  const Calibrated inputs = calibrate("resnet18_w4_traced.pt", "inputs");
  const Calibrated integer = calibrate("resnet18_w4_traced.pt", "integer");
  const auto [adds, before] = quantized_add_operands(inputs.model);
  const auto [adds_too, after] = quantized_add_operands(integer.model);
  EXPECT_EQ(adds, 8);  // two per stage
  EXPECT_EQ(adds_too, adds);
  EXPECT_EQ(before, 0);
  EXPECT_EQ(after, 2 * adds);
  // One fake-quant per value: the block inputs that feed both a convolution and the downsampling one share it.
  EXPECT_EQ(inputs.taps, 21 - 3);  // 20 convolutions + fc; three block inputs feed two convolutions each
  // New ones: the 8 second convolutions' and 3 downsampling convolutions' outputs, and the last ReLU's output
  // (the average pool's input); the other identities are block inputs, already quantized.
  EXPECT_EQ(integer.taps, inputs.taps + 8 + 3 + 1);
  int fake_quants = 0;
  for (const torch::jit::Node* n : integer.model.graph().nodes())
    fake_quants += n->kind().toQualString() == std::string(kFakeQuant);
  EXPECT_EQ(fake_quants, integer.taps);
  // The network still computes what it did, up to 8-bit quantization.
  torch::manual_seed(1);
  const at::Tensor x = torch::randn({4, 3, 32, 32});
  const at::Tensor a = inputs.model.forward(x), b = integer.model.forward(x);
  EXPECT_GT(torch::cosine_similarity(a.reshape({1, -1}), b.reshape({1, -1})).item<double>(), 0.99);
}

TEST(ActivationPlacement, BiasesSitOnTheAccumulatorGrid) {
  // Each quantized convolution's bias is a whole number of input scale · weight scale steps: the int32 bias an
  // integer runtime adds, so the simulation computes what deploys.
  const Calibrated c = calibrate("resnet18_w4_traced.pt", "integer");
  int checked = 0;
  for (const torch::jit::Node* n : c.model.graph().nodes()) {
    if (n->kind() != c10::aten::_convolution || n->input(0)->node()->kind().toQualString() != std::string(kFakeQuant))
      continue;
    const NamedTensor* bias = c.model.tensor_of(n->input(2));
    const NamedTensor* act = c.model.tensor_of(n->input(0)->node()->input(1));
    if (!bias || !act) continue;
    const at::Tensor w = c.model.tensor_of(n->input(1))->value;
    const at::Tensor w_scale = w.abs().amax({1, 2, 3}) / 127;  // symmetric per-channel INT8, min-max
    // In float32, as the grid was made; compared in double, up to float32's rounding of q · step.
    const at::Tensor step = (w_scale * act->value.item<float>()).to(torch::kDouble);
    const at::Tensor steps = bias->value.to(torch::kDouble) / step;
    EXPECT_TRUE(((steps - steps.round()).abs() <= steps.abs() * 1e-6 + 1e-4).all().item<bool>()) << bias->name;
    ++checked;
  }
  EXPECT_GE(checked, 19);
}

TEST(ActivationPlacement, AnAddWhoseResultFeedsFloatOpsStaysFloat) {
  // A transformer's residual adds feed layer norm: quantizing their operands would only add error.
  Model model = load_torchscript(fixture("encoder_traced.pt"), {{2, 5, 16}, "float32"});
  std::set<NodeInput> quantized;
  for (torch::jit::Node* n : model.graph().nodes())
    if (n->kind() == c10::aten::linear) quantized.insert({n, 0});
  ASSERT_FALSE(quantized.empty());
  EXPECT_TRUE(integer_operands(model.graph(), quantized).empty());
}

TEST(ActivationPlacement, FollowsResultsThroughReluAndPooling) {
  // MobileNet-V2's inverted residuals: the add's result reaches the next block's convolution directly and the
  // classifier through ReLU6-free pooling; every add is integer.
  Model model = load_torchscript(fixture("mobilenet_v2_traced.pt"), {{1, 3, 32, 32}, "float32"});
  std::set<NodeInput> quantized;
  for (torch::jit::Node* n : model.graph().nodes())
    if (n->kind() == c10::aten::_convolution || n->kind() == c10::aten::linear) quantized.insert({n, 0});
  int adds = 0;
  for (const torch::jit::Node* n : model.graph().nodes())
    adds += n->kind() == c10::aten::add || n->kind() == c10::aten::add_;
  const auto operands = integer_operands(model.graph(), quantized);
  ASSERT_GT(adds, 0);
  int add_operands = 0;
  for (const auto& [node, input] : operands)
    add_operands += node->kind() == c10::aten::add || node->kind() == c10::aten::add_;
  EXPECT_EQ(add_operands, 2 * adds);
  // With no quantized layer at all, nothing is integer.
  EXPECT_TRUE(integer_operands(model.graph(), {}).empty());
}

}  // namespace
}  // namespace adze
