#include "compress/encoding.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>
#include <string>

#include "model/layer_table.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;

Layer make_layer(LayerKind kind, Shape shape, int reduction_dim = 1, int64_t groups = 1) {
  Layer l;
  l.name = "layer";
  l.kind = kind;
  l.weight_shape = shape;
  l.reduction_dim = reduction_dim;
  l.reduction_size = shape.at(static_cast<std::size_t>(reduction_dim));
  l.groups = groups;
  return l;
}

LayerConfig config(int bits, NMPattern nm = {}, Granularity g = Granularity::kPerChannel) {
  LayerConfig c;
  c.weight_bits = bits;
  c.nm = nm;
  c.granularity = g;
  return c;
}

TEST(Schemes, OneRowEachWithUniqueIdsAndNamesThatPlansAndFilesUse) {
  std::set<int> ids;
  std::set<std::string> names, packed;
  for (const SchemeTraits& s : schemes()) {
    EXPECT_TRUE(ids.insert(static_cast<int>(s.id)).second) << s.name;
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_TRUE(packed.insert(s.packed_scheme).second) << s.packed_scheme;
    EXPECT_EQ(&traits_of(s.id), &s);
    EXPECT_EQ(scheme_named(s.name), &s);
    EXPECT_EQ(std::string(to_string(s.id)), s.name);
  }
  EXPECT_EQ(scheme_named("log2"), nullptr);
  EXPECT_EQ(scheme_names(), "uniform or pow2");
  // The smallest code: a symmetric 4-bit uniform grid -8..7 (asymmetric 0..15); power of two: 0 and ±1..±7.
  EXPECT_EQ(traits_of(Quantizer::kUniform).min_code(4, true), -8);
  EXPECT_EQ(traits_of(Quantizer::kUniform).min_code(4, false), 0);
  EXPECT_EQ(traits_of(Quantizer::kPow2).min_code(4, true), -7);
}

TEST(Project, NMThenInt4PerChannelDecodesExactlyAndAgreesWithTorch) {
  torch::manual_seed(0);
  at::Tensor w = torch::randn({32, 64});
  Layer layer = make_layer(LayerKind::kLinear, {32, 64});
  Encoding e = project(w, layer, config(4, {2, 4}));
  at::Tensor decoded = e.decode();
  // Exactly the 2 largest of each 4 survive, and the survivors are quantized with the survivors' scales.
  EXPECT_TRUE(torch::equal(e.mask, nm_mask_rows(w, {2, 4})));
  EXPECT_TRUE(satisfies_nm(decoded, {2, 4}));
  at::Tensor expected = torch::fake_quantize_per_channel_affine(w * e.mask, e.scale, e.zero_point, 0, -8, 7);
  EXPECT_TRUE(torch::equal(decoded, expected));
  EXPECT_TRUE(torch::equal(e.decode(), decoded));  // decoding is a pure function of the Encoding
  EXPECT_EQ(e.codes.scalar_type(), torch::kChar);
  EXPECT_TRUE(torch::equal(e.codes.masked_select(e.mask.logical_not()), torch::zeros({32 * 32}, torch::kChar)));
}

TEST(Project, ConvolutionRunsGroupsAlongInputChannelsAndRoundTripsTheLayout) {
  torch::manual_seed(1);
  at::Tensor w = torch::randn({6, 8, 3, 3});
  Layer layer = make_layer(LayerKind::kConv2d, {6, 8, 3, 3});
  Encoding dense = project(w, layer, config(32));
  EXPECT_TRUE(torch::equal(dense.decode(), w));
  Encoding sparse = project(w, layer, config(32, {1, 4}));
  at::Tensor decoded = sparse.decode();
  // For each (out, kh, kw), the 8 input channels form two groups of 4 with one survivor each.
  at::Tensor nonzero = decoded.ne(0).permute({0, 2, 3, 1}).reshape({-1, 4}).sum(1);
  EXPECT_TRUE(torch::equal(nonzero, torch::ones({6 * 9 * 2}, torch::kLong)));
  EXPECT_EQ(sparse.channels(), 6);
  EXPECT_EQ(sparse.reduction(), 72);
}

TEST(Project, MatmulOperandReducesAlongRows) {
  torch::manual_seed(2);
  at::Tensor w = torch::randn({16, 12});  // used as x @ W: dot products run down the 16 rows
  Layer layer = make_layer(LayerKind::kMatmul, {16, 12}, /*reduction_dim=*/0);
  at::Tensor decoded = project(w, layer, config(32, {2, 4})).decode();
  EXPECT_TRUE(torch::equal(decoded.t().ne(0).reshape({-1, 4}).sum(1), torch::full({12 * 4}, 2, torch::kLong)));
}

TEST(Project, PerGroupAndPerTensorScales) {
  torch::manual_seed(3);
  at::Tensor w = torch::randn({4, 256});
  Layer layer = make_layer(LayerKind::kLinear, {4, 256});
  LayerConfig c = config(4, {}, Granularity::kPerGroup);
  c.group_size = 64;
  Encoding grouped = project(w, layer, c);
  EXPECT_EQ(grouped.scale.numel(), 16);
  EXPECT_EQ(grouped.codes.sizes(), (std::vector<int64_t>{16, 64}));
  Encoding tensor = project(w, layer, config(8, {}, Granularity::kPerTensor));
  EXPECT_EQ(tensor.scale.numel(), 1);
  EXPECT_LT((grouped.decode() - w).pow(2).sum().item<double>(),
            (project(w, layer, config(4)).decode() - w).pow(2).sum().item<double>());
}

TEST(Project, UnstructuredKeepsTheRequestedShareOfTheNMSurvivors) {
  torch::manual_seed(4);
  at::Tensor w = torch::randn({8, 64});
  Layer layer = make_layer(LayerKind::kLinear, {8, 64});
  LayerConfig c = config(8, {2, 4});
  c.sparsity = 0.25;
  Encoding e = project(w, layer, c);
  EXPECT_EQ(e.mask.sum().item<int64_t>(), 8 * 32 * 3 / 4);
  EXPECT_TRUE(satisfies_nm(e.decode(), {2, 4}));
}

TEST(Project, Pow2QuantizerAfterNM) {
  torch::manual_seed(5);
  at::Tensor w = torch::randn({8, 32});
  Layer layer = make_layer(LayerKind::kLinear, {8, 32});
  LayerConfig c = config(4, {2, 4});
  c.quantizer = Quantizer::kPow2;
  at::Tensor decoded = project(w, layer, c).decode();
  at::Tensor nonzero = decoded.masked_select(decoded != 0).abs();
  EXPECT_TRUE(torch::equal(torch::exp2(torch::round(torch::log2(nonzero))), nonzero));
  EXPECT_TRUE(satisfies_nm(decoded, {2, 4}));
}

TEST(CheckConfig, NamesTheFieldThatCannotApply) {
  Layer fc = make_layer(LayerKind::kLinear, {10, 30});
  EXPECT_NE(check_config(fc, config(4, {2, 4})).find("nm 2:4: reduction dimension 30 is not a multiple of M=4"),
            std::string::npos);
  EXPECT_NE(check_config(fc, config(9)).find("weight_bits 9"), std::string::npos);
  LayerConfig grouped = config(4, {}, Granularity::kPerGroup);
  grouped.group_size = 16;
  EXPECT_NE(check_config(fc, grouped).find("group_size 16"), std::string::npos);
  Layer depthwise = make_layer(LayerKind::kConv2d, {8, 1, 3, 3}, 1, 8);
  EXPECT_NE(check_config(depthwise, config(8, {2, 4})).find("reduction dimension 1"), std::string::npos);
  EXPECT_EQ(check_config(fc, config(8)), "");
  expect_error(
      [&] {
        project(torch::randn({10, 30}), fc, config(4, {2, 4}));
      },
      ErrorKind::kInvalidConfig, {"layer 'layer'", "M=4"});
}

TEST(Project, RejectsNaNWeights) {
  Layer fc = make_layer(LayerKind::kLinear, {2, 4});
  at::Tensor w = torch::ones({2, 4});
  w[1][2] = std::nan("");
  expect_error([&] { project(w, fc, config(8)); }, ErrorKind::kInvalidArgument, {"layer 'layer'", "NaN"});
}

}  // namespace
}  // namespace adze

namespace adze {
namespace {

TEST(Project, ChannelPermutationKeepsMoreMagnitudeAndDecodesExactly) {
  torch::manual_seed(5);
  // A conv whose input channels differ in scale: which channels share a 2:4 group matters.
  at::Tensor w = torch::randn({16, 32, 3, 3}) * torch::rand({1, 32, 1, 1});
  Layer layer = make_layer(LayerKind::kConv2d, {16, 32, 3, 3});
  LayerConfig plain = config(4, {2, 4});
  LayerConfig permuted = plain;
  permuted.permute = true;
  Encoding a = project(w, layer, plain), b = project(w, layer, permuted);
  ASSERT_TRUE(b.permutation.defined());
  EXPECT_EQ(b.permutation.numel(), 32);  // the input channels, shared by every kernel position
  EXPECT_FALSE(a.permutation.defined());
  // 2:4 holds in the encoded layout (what a kernel executes), and more magnitude survives.
  EXPECT_TRUE(satisfies_nm(b.to_encoded_layout(b.decode()), {2, 4}));
  const double kept_plain = (w * a.from_canonical(a.mask)).abs().sum().item<double>();
  const double kept_permuted = (w * b.from_canonical(b.mask)).abs().sum().item<double>();
  EXPECT_GT(kept_permuted, kept_plain * 1.01);
  // Exact reconstruction: the codes, in the encoded layout, dequantize to the decoded weight.
  at::Tensor rows = dequantize_rows(b.codes, RowQuantParams{b.scale, b.zero_point}).reshape({16, -1});
  EXPECT_TRUE(torch::equal(b.from_canonical(rows * b.mask.to(torch::kFloat)), b.decode()));
  EXPECT_TRUE(torch::equal(b.to_encoded_layout(b.decode()), rows * b.mask.to(torch::kFloat)));
  // Keeping the structure reproduces the same permutation and mask without searching.
  Encoding again = project(w, layer, permuted, b.structure());
  EXPECT_TRUE(torch::equal(again.decode(), b.decode()));
  EXPECT_EQ(check_config(layer,
                         [] {
                           LayerConfig c;
                           c.permute = true;
                           return c;
                         }()),
            "permute: needs an N:M pattern (it chooses which channels share a group)");
}

// Data-parallel ranks each choose the scales of a share of the channels (compress/compressor.h): the shares,
// put together, are project()'s own scales, bit for bit, for every layout, granularity, mask and method.
TEST(ChooseChannelScales, SharesPutTogetherAreTheScalesProjectChooses) {
  torch::manual_seed(11);
  struct Case {
    std::string what;
    Layer layer;
    at::Tensor weight;
    LayerConfig config;
  };
  std::vector<Case> cases;
  auto with = [](LayerConfig c, auto edit) {
    edit(c);
    return c;
  };
  LayerConfig mse = config(4);
  mse.scale_method = ScaleMethod::kMse;
  cases.push_back({"linear, MSE", make_layer(LayerKind::kLinear, {10, 96}), torch::randn({10, 96}), mse});
  cases.push_back({"conv, 2:4, MSE", make_layer(LayerKind::kConv2d, {7, 8, 3, 3}), torch::randn({7, 8, 3, 3}),
                   with(mse, [](LayerConfig& c) {
                     c.nm = {2, 4};
                   })});
  cases.push_back({"x @ W (reduces along rows), asymmetric 8-bit, per group",
                   make_layer(LayerKind::kMatmul, {64, 9}, /*reduction_dim=*/0), torch::randn({64, 9}),
                   with(config(8, {}, Granularity::kPerGroup), [](LayerConfig& c) {
                     c.symmetric = false;
                     c.group_size = 16;
                   })});
  cases.push_back({"linear, percentile, 2:4 then 30% unstructured", make_layer(LayerKind::kLinear, {9, 64}),
                   torch::randn({9, 64}), with(config(3, {2, 4}), [](LayerConfig& c) {
                     c.scale_method = ScaleMethod::kPercentile;
                     c.percentile = 99.0;
                     c.sparsity = 0.3;
                   })});
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    const Encoding whole = project(k.weight, k.layer, k.config);
    const int64_t channels = whole.channels();
    for (const int ranks : {2, 3}) {
      std::vector<at::Tensor> scales, zero_points;
      for (int r = 0; r < ranks; ++r) {
        const RowQuantParams share =
            choose_channel_scales(k.weight, k.layer, k.config, {}, channels * r / ranks, channels * (r + 1) / ranks);
        scales.push_back(share.scale);
        zero_points.push_back(share.zero_point);
      }
      EXPECT_TRUE(torch::equal(torch::cat(scales), whole.scale)) << ranks << " ranks";
      EXPECT_TRUE(torch::equal(torch::cat(zero_points), whole.zero_point)) << ranks << " ranks";
      // Projecting with them gives project()'s encoding.
      const Encoding given = project(k.weight, k.layer, k.config, {}, {torch::cat(scales), torch::cat(zero_points)});
      EXPECT_TRUE(torch::equal(given.codes, whole.codes));
    }
  }
  // A permutation and a fixed mask, as fine-tuning keeps them.
  Layer conv = make_layer(LayerKind::kConv2d, {6, 16, 3, 3});
  const at::Tensor w = torch::randn({6, 16, 3, 3}) * torch::rand({1, 16, 1, 1});
  LayerConfig permuted = with(mse, [](LayerConfig& c) {
    c.nm = {2, 4};
    c.permute = true;
  });
  const Encoding first = project(w, conv, permuted);
  const at::Tensor moved = w + 0.05 * torch::randn(w.sizes());
  const Encoding whole = project(moved, conv, permuted, first.structure());
  const at::Tensor halves = torch::cat({choose_channel_scales(moved, conv, permuted, first.structure(), 0, 4).scale,
                                        choose_channel_scales(moved, conv, permuted, first.structure(), 4, 6).scale});
  EXPECT_TRUE(torch::equal(halves, whole.scale));
  expect_error([&] { choose_channel_scales(moved, conv, permuted, {}, 0, 3); }, ErrorKind::kInternal,
               {"permutation is not chosen yet"});
  // Only the share's channels are read: a NaN in channel 5 is found by the share that holds it.
  at::Tensor bad = moved.clone();
  bad[5][0][0][0] = NAN;
  EXPECT_TRUE(
      torch::equal(choose_channel_scales(bad, conv, permuted, first.structure(), 0, 3).scale, halves.slice(0, 0, 3)));
  expect_error([&] { choose_channel_scales(bad, conv, permuted, first.structure(), 3, 6); },
               ErrorKind::kInvalidArgument, {"layer 'layer'", "contains NaN or Inf"});
  expect_error([&] { choose_channel_scales(moved, conv, config(4, {}, Granularity::kPerTensor), {}, 0, 3); },
               ErrorKind::kInternal, {"not chosen per channel or group"});
}

}  // namespace
}  // namespace adze
