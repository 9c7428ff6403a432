#include "compress/encoding_io.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "model/frontend.h"
#include "model/layer_table.h"
#include "model/model.h"
#include "tests/test_util.h"

namespace adze {
namespace {

Layer linear(Shape shape) {
  Layer l;
  l.name = "fc";
  l.kind = LayerKind::kLinear;
  l.weight_shape = shape;
  l.reduction_size = shape[1];
  return l;
}

TEST(EncodingIo, RoundTripIsBitIdentical) {
  testing::TempDir dir;
  torch::manual_seed(0);
  std::map<std::string, Encoding> encodings;
  LayerConfig q4;
  q4.weight_bits = 4;
  q4.nm = {2, 4};
  q4.symmetric = false;
  encodings["a"] = project(torch::randn({16, 32}), linear({16, 32}), q4);
  LayerConfig sparse_float;
  sparse_float.nm = {1, 4};
  encodings["b"] = project(torch::randn({8, 8}), linear({8, 8}), sparse_float);
  LayerConfig permuted = q4;
  permuted.permute = true;
  encodings["c"] = project(torch::randn({8, 16}) * torch::rand({1, 16}), linear({8, 16}), permuted);
  ASSERT_TRUE(encodings["c"].permutation.defined());
  save_encodings(encodings, dir.file("e.pt"));
  auto loaded = load_encodings(dir.file("e.pt"));
  ASSERT_EQ(loaded.size(), 3u);
  EXPECT_TRUE(torch::equal(loaded.at("c").permutation, encodings["c"].permutation));
  for (const auto& [name, e] : encodings) {
    const Encoding& l = loaded.at(name);
    EXPECT_EQ(l.shape, e.shape);
    EXPECT_EQ(l.order, e.order);
    EXPECT_TRUE(l.config == e.config) << name;
    EXPECT_TRUE(torch::equal(l.decode(), e.decode())) << name;
    if (e.codes.defined()) {
      EXPECT_TRUE(torch::equal(l.codes, e.codes));
    }
  }
}

TEST(EncodingIo, RejectsForeignAndInconsistentFiles) {
  testing::TempDir dir;
  std::ofstream(dir.file("junk.pt")) << "junk";
  testing::expect_error([&] { load_encodings(dir.file("junk.pt")); }, ErrorKind::kIo, {"junk.pt"});
  LayerConfig q8;
  q8.weight_bits = 8;
  Encoding e = project(torch::randn({4, 8}), linear({4, 8}), q8);
  e.shape = {4, 9};
  save_encodings({{"fc", e}}, dir.file("bad.pt"));
  testing::expect_error([&] { load_encodings(dir.file("bad.pt")); }, ErrorKind::kIo, {"layer 'fc'", "4x9"});
  // A permutation that is not one (a repeated channel) is rejected.
  e.shape = {4, 8};
  e.permutation = torch::tensor({0, 1, 2, 3, 4, 5, 6, 6}, torch::kLong);
  save_encodings({{"fc", e}}, dir.file("perm.pt"));
  testing::expect_error([&] { load_encodings(dir.file("perm.pt")); }, ErrorKind::kIo, {"layer 'fc'", "do not fit"});
}

TEST(EncodedBits, CountsCodesScalesZeroPointsAndIndexBits) {
  LayerConfig c;
  c.weight_bits = 4;
  c.nm = {2, 4};
  Encoding e = project(torch::randn({16, 64}), linear({16, 64}), c);
  EncodedBits b = encoded_bits(e);
  EXPECT_EQ(b.codes, 16 * 32 * 4);  // half the weights kept, 4 bits each
  EXPECT_EQ(b.scales, 16 * 32);     // one fp32 scale per output channel
  EXPECT_EQ(b.zero_points, 0);      // symmetric
  EXPECT_EQ(b.index, 16 * 32 * 2);  // 2-bit index per kept weight
  c.nm = {};
  c.symmetric = false;
  b = encoded_bits(project(torch::randn({16, 64}), linear({16, 64}), c));
  EXPECT_EQ(b.codes, 16 * 64 * 4);
  EXPECT_EQ(b.zero_points, 16 * 4);
  EXPECT_EQ(b.index, 0);
}

// What a cost model prices without encoding equals what the projection stores, for the layers the layer table
// builds from a real model (convolutions 7x7, 3x3, 1x1 and a linear layer, traced in Python).
TEST(EncodedBits, PlannedBitsEqualTheEncodedOnes) {
  const Model model = load_torchscript(testing::fixture("resnet18_w4_traced.pt"), {{1, 3, 32, 32}, "float32"});
  const LayerTable table = build_layer_table(model);
  int checked = 0;
  for (const Layer& layer : table.layers) {
    const at::Tensor weight = model.tensors()[static_cast<std::size_t>(model.find_tensor(layer.weight))].value;
    for (int bits : {2, 4, 8, 32})
      for (auto g : {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup})
        for (NMPattern nm : {NMPattern{}, NMPattern{2, 4}, NMPattern{1, 8}})
          for (bool sym : {true, false}) {
            LayerConfig c;
            c.weight_bits = bits;
            c.granularity = g;
            c.group_size = 8;
            c.nm = nm;
            c.symmetric = sym;
            c.permute = nm.enabled() && bits == 4;
            if (!check_config(layer, c).empty()) continue;
            SCOPED_TRACE(layer.name + " " + std::to_string(bits) + " bits " + to_string(g) + " " + nm.to_string());
            const Encoding e = project(weight, layer, c);
            const EncodedBits want = encoded_bits(e), got = planned_bits(layer, c);
            EXPECT_EQ(got.codes, want.codes);
            EXPECT_EQ(got.scales, want.scales);
            EXPECT_EQ(got.zero_points, want.zero_points);
            EXPECT_EQ(got.index, want.index);
            ++checked;
          }
  }
  EXPECT_GT(checked, 500);
}

}  // namespace
}  // namespace adze
