#include "model/layer_table.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "model/frontend.h"
#include "model/model.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::fixture;
using testing::TempDir;

Model define_and_load(torch::jit::Module& m, const std::string& src, const InputSpec& input) {
  static TempDir dir;
  m.define(src);
  const std::string path = dir.file(m.type()->name()->name() + ".pt");
  m.save(path);
  return load_torchscript(path, input);
}

TEST(LayerTable, ConvolutionsIncludingDepthwiseAndLinear) {
  Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{2, 3, 16, 16}, "float32"});
  const LayerTable t = build_layer_table(model);
  ASSERT_EQ(t.layers.size(), 3u);
  const Layer& conv = t.layers[0];
  EXPECT_EQ(conv.name, "features.0");
  EXPECT_EQ(conv.weight, "features.0.weight");
  EXPECT_EQ(conv.kind, LayerKind::kConv2d);
  EXPECT_EQ(conv.weight_shape, (Shape{8, 3, 3, 3}));
  EXPECT_EQ(conv.macs, 16 * 16 * 8 * 27);  // per sample, though traced with batch 2
  EXPECT_EQ(conv.reduction_dim, 1);
  EXPECT_EQ(conv.in_channels, 3);
  EXPECT_EQ(conv.bias_params, 0);
  const Layer& dw = t.layers[1];
  EXPECT_EQ(dw.groups, 8);
  EXPECT_TRUE(dw.depthwise());
  EXPECT_EQ(dw.in_channels, 8);
  EXPECT_EQ(dw.macs, 16 * 16 * 8 * 9);
  EXPECT_EQ(dw.bias_params, 8);
  const Layer& fc = t.layers[2];
  EXPECT_EQ(fc.kind, LayerKind::kLinear);
  EXPECT_EQ(fc.macs, 8 * 5);
  EXPECT_EQ(t.total_macs, conv.macs + dw.macs + fc.macs);
  EXPECT_EQ(t.total_params, model.parameter_count());
  EXPECT_TRUE(t.unknown_ops.empty());
}

TEST(LayerTable, TiedEmbeddingAndHeadAreListedOnce) {
  torch::jit::Module m("TiedLm");
  m.register_parameter("embed", torch::randn({50, 8}), false);
  m.register_parameter("proj", torch::randn({8, 8}), false);
  Model model = define_and_load(m, R"(
def forward(self, ids):
    h = torch.embedding(self.embed, ids)
    h = torch.matmul(h, self.proj)
    return torch.matmul(h, self.embed.t())
)",
                                {{2, 6}, "int64"});
  const LayerTable t = build_layer_table(model);
  ASSERT_EQ(t.layers.size(), 2u);
  EXPECT_EQ(t.layers[0].name, "embed");
  EXPECT_EQ(t.layers[0].kind, LayerKind::kEmbedding);
  EXPECT_EQ(t.layers[0].uses, 2);
  EXPECT_EQ(t.layers[0].macs, 6 * 50 * 8);  // the head: 6 positions x 50 logits x 8
  EXPECT_EQ(t.layers[1].kind, LayerKind::kMatmul);
  EXPECT_EQ(t.layers[1].reduction_dim, 0);  // h @ W: dot products run down W's rows
  EXPECT_EQ(t.layers[1].macs, 6 * 8 * 8);
  EXPECT_EQ(t.total_params, 50 * 8 + 8 * 8);
}

TEST(LayerTable, Conv1dAndUnknownOpsAreReportedNotFatal) {
  torch::jit::Module m("Conv1dNet");
  m.register_parameter("weight", torch::randn({6, 4, 3}), false);
  Model model = define_and_load(m, R"(
def forward(self, x):
    y = torch.conv1d(x, self.weight, None, [1], [1])
    return torch.cumsum(y, 2)
)",
                                {{1, 4, 10}, "float32"});
  const LayerTable t = build_layer_table(model);
  ASSERT_EQ(t.layers.size(), 1u);
  EXPECT_EQ(t.layers[0].kind, LayerKind::kConv1d);
  EXPECT_EQ(t.layers[0].macs, 6 * 10 * 4 * 3);
  ASSERT_EQ(t.unknown_ops.size(), 1u);
  EXPECT_EQ(t.unknown_ops[0].kind, "aten::cumsum");
}

}  // namespace
}  // namespace adze
