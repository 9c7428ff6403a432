#include "model/fold_bn.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "model/frontend.h"
#include "model/layer_table.h"
#include "model/model.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::fixture;
using testing::TempDir;

int count_nodes(const Model& model, const std::string& kind) {
  int n = 0;
  for (const auto* node : model.graph().nodes())
    if (node->kind().toQualString() == kind) ++n;
  return n;
}

class FoldBn : public ::testing::TestWithParam<std::string> {};

TEST_P(FoldBn, FoldedModelComputesTheSame) {
  Model model = load_torchscript(fixture(GetParam() + ".pt"), {{8, 3, 16, 16}, "float32"});
  torch::manual_seed(1);
  at::Tensor x = torch::randn({8, 3, 16, 16});
  at::Tensor before = model.forward(x);
  const int64_t params_before = model.parameter_count();
  FoldBnResult result = fold_batch_norm(model);
  ASSERT_EQ(result.folded.size(), 2u);
  EXPECT_EQ(result.folded[0], "features.0 <- features.1");
  EXPECT_EQ(count_nodes(model, "aten::batch_norm"), 0);
  EXPECT_LT((model.forward(x) - before).abs().max().item<double>(), 1e-5);
  // The first conv had no bias and gets one; both BatchNorms' four tensors and counter are gone.
  EXPECT_GE(model.find_tensor("features.0.bias"), 0);
  EXPECT_LT(model.find_tensor("features.1.running_mean"), 0);
  EXPECT_LT(model.find_tensor("features.1.num_batches_tracked"), 0);
  EXPECT_EQ(model.parameter_count(), params_before - 2 * 16 + 8);
  EXPECT_EQ(build_layer_table(model).layers[0].bias_params, 8);
}
INSTANTIATE_TEST_SUITE_P(TraceAndScript, FoldBn, ::testing::Values("cnn_bn_traced", "cnn_bn_scripted"));

TEST(FoldBnSkips, BatchNormNotFedByAConvOrLinear) {
  TempDir dir;
  torch::jit::Module m("BnAfterAdd");
  m.register_parameter("w", torch::randn({4, 4, 1, 1}), false);
  m.register_parameter("gamma", torch::rand({4}) + 0.5, false);
  m.register_parameter("beta", torch::randn({4}), false);
  m.register_buffer("mean", torch::randn({4}));
  m.register_buffer("var", torch::rand({4}) + 0.5);
  m.define(R"(
def forward(self, x):
    y = torch.conv2d(x, self.w) + x
    return torch.batch_norm(y, self.gamma, self.beta, self.mean, self.var, False, 0.1, 1e-5, False)
)");
  m.save(dir.file("m.pt"));
  Model model = load_torchscript(dir.file("m.pt"), {{2, 4, 5, 5}, "float32"});
  at::Tensor x = torch::randn({2, 4, 5, 5});
  at::Tensor before = model.forward(x);
  FoldBnResult result = fold_batch_norm(model);
  EXPECT_TRUE(result.folded.empty());
  EXPECT_EQ(result.skipped, 1);
  EXPECT_TRUE(torch::equal(model.forward(x), before));
}

}  // namespace
}  // namespace adze
