// Activation quantization on a multi-head-attention model, whose in-projection is a bare parameter
// ("self_attn.in_proj_weight") rather than a module's ".weight": its scale must live beside it, or the model
// cannot be saved as TorchScript.
#include "compress/activation_quant.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include "compress/pass.h"
#include "model/frontend.h"
#include "model/torchscript_io.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using Json = nlohmann::json;
using testing::fixture;

const InputSpec kTokens{{8, 16, 32}, "float32"};

struct Transformer {
  Model model = load_torchscript(fixture("transformer_traced.pt"), kTokens);
  Dataset data = load_dataset("tensors:" + fixture("tensors_tokens.pt"), {"train", 0, 0});
  CompressionContext context;
  Transformer() {
    context.model = &model;
    context.table = build_layer_table(model);
    context.data = &data;
    context.plan =
        resolve_plan(parse_plan(Json::parse(R"({"defaults": {"weight_bits": 8, "act_bits": 8}})"), "plan.json"),
                     context.table, "plan.json");
  }
  // W8A8 as configs/pipelines/ptq-activations.json does it.
  void quantize() {
    run_pipeline(parse_pipeline(Json::parse(R"({"passes": ["fold-bn", "quantize.weights",
        {"name": "quantize.calibrate", "options": {"method": "minmax", "batches": 8}}]})"),
                                "p.json"),
                 context);
  }
};

int count_nodes(const Model& model, const char* kind) {
  int n = 0;
  for (const auto* node : model.graph().nodes())
    if (node->kind().toQualString() == std::string(kind)) ++n;
  return n;
}

TEST(ActivationQuant, MultiHeadAttentionIsCalibratedSavedAndStaysCloseToFloat) {
  Transformer t;
  const at::Tensor x = t.data.inputs.slice(0, 0, 8);
  const at::Tensor before = t.model.forward(x);
  t.quantize();
  EXPECT_EQ(count_nodes(t.model, "aten::fake_quantize_per_tensor_affine"), 9);  // every linear of the table
  const int in_proj = t.model.find_tensor("encoder.layers.0.self_attn.in_proj_weight_act_scale");
  ASSERT_GE(in_proj, 0);
  EXPECT_GT(t.model.tensors()[static_cast<std::size_t>(in_proj)].value.item<float>(), 0.0f);
  EXPECT_GE(t.model.find_tensor("encoder.layers.0.linear1.act_scale"), 0);  // a module's layer: as before
  const at::Tensor after = t.model.forward(x);
  EXPECT_FALSE(torch::equal(after, before));
  EXPECT_LT((after - before).abs().max().item<double>(), 0.05 * before.abs().max().item<double>());
  EXPECT_EQ(after.argmax(1).eq(before.argmax(1)).sum().item<int64_t>(), 8);
  // Saved as TorchScript (this threw libtorch's "Parameter field mismatch for the field 'in_proj_weight'") and
  // loaded again, it computes the same.
  testing::TempDir dir;
  save_torchscript(t.model, dir.file("m.pt"));
  Model again = load_torchscript(dir.file("m.pt"), kTokens);
  EXPECT_TRUE(torch::equal(again.forward(x), after));
}

TEST(ActivationQuant, LearnedScalesFindTheScalesBesideABareParameter) {
  Transformer t;
  t.quantize();
  EXPECT_EQ(learn_activation_scales(t.model).size(), 9u);
  EXPECT_EQ(count_nodes(t.model, "aten::_fake_quantize_learnable_per_tensor_affine"), 9);
  EXPECT_EQ(fix_activation_scales(t.model), 9);
  EXPECT_EQ(count_nodes(t.model, "aten::fake_quantize_per_tensor_affine"), 9);
}

}  // namespace
}  // namespace adze
