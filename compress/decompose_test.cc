#include "compress/decompose.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "compress/encoding_io.h"
#include "compress/plan.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;

Layer make_layer(LayerKind kind, Shape shape, int64_t groups = 1) {
  Layer l;
  l.name = "layer";
  l.weight = "layer.weight";
  l.kind = kind;
  l.weight_shape = shape;
  l.params = shape_numel(shape);
  l.out_channels = shape.at(0);
  l.in_channels = shape.at(1) * groups;
  l.reduction_dim = 1;
  l.reduction_size = shape.at(1);
  l.groups = groups;
  l.macs = l.params;
  return l;
}

LayerConfig decomposed(Decomposition d, int bits = 32) {
  LayerConfig c;
  c.weight_bits = bits;
  c.decompose = d;
  return c;
}

double frobenius(const at::Tensor& t) { return t.to(torch::kDouble).pow(2).sum().sqrt().item<double>(); }

// The reference: the tail of the singular values, from libtorch's own SVD.
double svd_tail(const at::Tensor& matrix, int64_t r) {
  const at::Tensor s = torch::linalg_svdvals(matrix.to(torch::kDouble));
  return s.slice(0, r).pow(2).sum().sqrt().item<double>();
}

TEST(LowRank, ErrorIsTheTailOfTheSingularValues) {
  torch::manual_seed(0);
  const at::Tensor w = torch::randn({48, 64});
  LayerConfig c = decomposed(Decomposition::kLowRank);
  c.rank = 12;
  const Encoding e = project(w, make_layer(LayerKind::kLinear, {48, 64}), c);
  ASSERT_EQ(e.factors.size(), 2u);
  EXPECT_EQ(e.factors[0].shape, (Shape{12, 64}));  // applied first: K -> r
  EXPECT_EQ(e.factors[1].shape, (Shape{48, 12}));  // then r -> C
  EXPECT_NEAR(frobenius(w - e.decode()), svd_tail(w, 12), 1e-4);
  // A matrix of rank r is kept exactly.
  const at::Tensor low = torch::randn({48, 12}).mm(torch::randn({12, 64}));
  EXPECT_LT(frobenius(low - project(low, make_layer(LayerKind::kLinear, {48, 64}), c).decode()), 1e-3);
}

TEST(LowRank, RankRatioAndAConvolutionAsAConvThenAOneByOne) {
  torch::manual_seed(1);
  const at::Tensor w = torch::randn({16, 8, 3, 3});
  const Layer layer = make_layer(LayerKind::kConv2d, {16, 8, 3, 3});
  LayerConfig c = decomposed(Decomposition::kLowRank);
  c.rank_ratio = 0.25;  // of min(16, 72)
  EXPECT_EQ(lowrank_rank(layer, c), 4);
  const Encoding e = project(w, layer, c);
  EXPECT_EQ(e.factors[0].shape, (Shape{4, 8, 3, 3}));
  EXPECT_EQ(e.factors[1].shape, (Shape{16, 4, 1, 1}));
  EXPECT_NEAR(frobenius(w - e.decode()), svd_tail(w.permute({0, 2, 3, 1}).reshape({16, -1}), 4), 1e-4);
  // Running the factors as a 3x3 convolution to 4 channels and a 1x1 convolution is the decoded convolution.
  const at::Tensor x = torch::randn({2, 8, 10, 10});
  const at::Tensor factored = torch::conv2d(torch::conv2d(x, e.factors[0].decode(), {}, 1, 1), e.factors[1].decode());
  EXPECT_TRUE(torch::allclose(factored, torch::conv2d(x, e.decode(), {}, 1, 1), 1e-4, 1e-4));
  EXPECT_DOUBLE_EQ(factored_macs(layer, c), layer.macs * (4.0 * 72 + 16 * 4) / (16.0 * 72));
}

TEST(LowRank, QuantizedFactorsDecodeExactlyAndCostWhatTheyStore) {
  torch::manual_seed(2);
  const at::Tensor w = torch::randn({32, 64});
  const Layer layer = make_layer(LayerKind::kLinear, {32, 64});
  LayerConfig c = decomposed(Decomposition::kLowRank, 4);
  c.rank = 8;
  c.nm = {2, 4};
  const Encoding e = project(w, layer, c);
  for (const Encoding& f : e.factors) {
    EXPECT_EQ(f.codes.scalar_type(), torch::kChar);
    EXPECT_TRUE(f.mask.defined());
  }
  EXPECT_TRUE(torch::equal(e.decode(), e.factors[1].decode().mm(e.factors[0].decode())));
  EXPECT_EQ(encoded_bits(e).total(), planned_bits(layer, c).total());
  // 8 x 64 and 32 x 8, half kept, 4-bit codes + 2-bit positions + a 32-bit scale per row.
  EXPECT_EQ(planned_bits(layer, c).total(), (8 * 64 + 32 * 8) / 2 * (4 + 2) + (8 + 32) * 32);
}

TEST(Monarch, EachBlockIsItsBestRankOneApproximation) {
  torch::manual_seed(3);
  const int64_t C = 32, K = 48, b = 4;
  const at::Tensor w = torch::randn({C, K});
  LayerConfig c = decomposed(Decomposition::kMonarch);
  c.blocks = b;
  const Encoding e = project(w, make_layer(LayerKind::kLinear, {C, K}), c);
  EXPECT_EQ(e.factors[0].shape, (Shape{b * b, K / b}));
  EXPECT_EQ(e.factors[1].shape, (Shape{C, b}));
  const at::Tensor d = e.decode();
  double tail = 0;
  for (int64_t l = 0; l < b; ++l)
    for (int64_t k = 0; k < b; ++k) {
      const at::Tensor block = w.slice(0, l * C / b, (l + 1) * C / b).slice(1, k * K / b, (k + 1) * K / b);
      const at::Tensor got = d.slice(0, l * C / b, (l + 1) * C / b).slice(1, k * K / b, (k + 1) * K / b);
      EXPECT_EQ(torch::linalg_matrix_rank(got.to(torch::kDouble), 1e-6).item<int64_t>(), 1);
      tail += std::pow(svd_tail(block, 1), 2);
    }
  EXPECT_NEAR(frobenius(w - d), std::sqrt(tail), 1e-4);
}

TEST(Monarch, DecodesToTheProductOfTwoBlockDiagonalsAndAPermutation) {
  torch::manual_seed(4);
  const int64_t C = 16, K = 24, b = 4;
  LayerConfig c = decomposed(Decomposition::kMonarch, 8);
  c.blocks = b;
  const Encoding e = project(torch::randn({C, K}), make_layer(LayerKind::kLinear, {C, K}), c);
  // Reference: x -> R (block k maps x[k] to b values, one per output block) -> transpose (k, l) -> (l, k) -> L.
  const at::Tensor blocks_in = e.factors[0].decode().view({b, b, K / b});   // [k, l, j]
  const at::Tensor blocks_out = e.factors[1].decode().view({b, C / b, b});  // [l, s, k]
  const at::Tensor x = torch::randn({K});
  at::Tensor mid = torch::zeros({b, b});  // [k, l]
  for (int64_t k = 0; k < b; ++k) mid[k] = blocks_in[k].mv(x.slice(0, k * K / b, (k + 1) * K / b));
  at::Tensor y = torch::zeros({C});
  for (int64_t l = 0; l < b; ++l) y.slice(0, l * C / b, (l + 1) * C / b).copy_(blocks_out[l].mv(mid.select(1, l)));
  EXPECT_TRUE(torch::allclose(e.decode().mv(x), y, 1e-4, 1e-4));
  const Layer layer = make_layer(LayerKind::kLinear, {C, K});
  EXPECT_EQ(encoded_bits(e).total(), planned_bits(layer, c).total());
}

TEST(SmartDeal, CoefficientsArePowersOfTwoAndBeatPlainPowerOfTwo) {
  torch::manual_seed(5);
  const at::Tensor w = torch::randn({16, 8, 3, 3});
  const Layer layer = make_layer(LayerKind::kConv2d, {16, 8, 3, 3});
  LayerConfig c = decomposed(Decomposition::kSmartDeal, 4);
  c.sparsity = 0.5;
  const Encoding e = project(w, layer, c);
  ASSERT_EQ(e.factors.size(), 2u);
  const Encoding& coefficients = e.factors[0];
  EXPECT_EQ(coefficients.config.quantizer, Quantizer::kPow2);
  EXPECT_EQ(coefficients.shape, (Shape{16, 72}));
  EXPECT_EQ(e.factors[1].shape, (Shape{16, 9}));
  const at::Tensor values = coefficients.decode();
  const at::Tensor nonzero = values.masked_select(values.ne(0)).abs();
  EXPECT_TRUE(torch::equal(torch::exp2(torch::round(torch::log2(nonzero))), nonzero));  // every one ±2^k
  EXPECT_NEAR(values.eq(0).to(torch::kFloat).mean().item<float>(), 0.5, 0.01);
  // Against projecting the weight itself onto the same 4-bit powers of two, half of them zero.
  LayerConfig plain;
  plain.weight_bits = 4;
  plain.quantizer = Quantizer::kPow2;
  plain.sparsity = 0.5;
  const double smartdeal = frobenius(w - e.decode()), pow2 = frobenius(w - project(w, layer, plain).decode());
  EXPECT_LT(smartdeal, 0.9 * pow2) << smartdeal << " vs " << pow2;
  EXPECT_EQ(encoded_bits(e).total(), planned_bits(layer, c).total());
  // Decoding follows the kernel rows: each 3-vector of a kernel is its coefficients times the channel's basis.
  const at::Tensor basis = e.factors[1].decode().view({16, 3, 3});
  EXPECT_TRUE(torch::allclose(e.decode()[2][5][1], values[2].view({24, 3})[5 * 3 + 1].matmul(basis[2]), 1e-5, 1e-6));
}

TEST(Decompose, IsDeterministicAndRoundTripsThroughEncodingsFiles) {
  testing::TempDir dir;
  torch::manual_seed(6);
  const at::Tensor w = torch::randn({24, 32});
  const Layer layer = make_layer(LayerKind::kLinear, {24, 32});
  std::map<std::string, Encoding> encodings;
  LayerConfig lowrank = decomposed(Decomposition::kLowRank, 8);
  lowrank.rank = 5;
  LayerConfig monarch = decomposed(Decomposition::kMonarch, 4);
  monarch.blocks = 2;
  LayerConfig smartdeal = decomposed(Decomposition::kSmartDeal, 6);
  smartdeal.basis = 4;
  encodings["lowrank"] = project(w, layer, lowrank);
  encodings["monarch"] = project(w, layer, monarch);
  encodings["smartdeal"] = project(w, layer, smartdeal);
  EXPECT_TRUE(torch::equal(project(w, layer, smartdeal).decode(), encodings["smartdeal"].decode()));
  const std::string path = dir.path() + "/encodings.pt";
  save_encodings(encodings, path);
  const auto loaded = load_encodings(path);
  for (const auto& [name, e] : encodings) {
    EXPECT_EQ(loaded.at(name).config, e.config) << name;
    EXPECT_TRUE(torch::equal(loaded.at(name).decode(), e.decode())) << name;
    EXPECT_EQ(encoded_bits(loaded.at(name)).total(), encoded_bits(e).total()) << name;
  }
}

// A damaged decomposed layer in encodings.pt is refused naming the file, the layer and the factor.
TEST(Decompose, DamagedFactorsInEncodingsFilesAreRefused) {
  testing::TempDir dir;
  torch::manual_seed(7);
  const Layer layer = make_layer(LayerKind::kLinear, {16, 24});
  LayerConfig c = decomposed(Decomposition::kLowRank, 8);
  c.rank = 4;
  const Encoding good = project(torch::randn({16, 24}), layer, c);
  const std::string path = dir.file("e.pt");
  Encoding one_factor = good;
  one_factor.factors.pop_back();
  save_encodings({{"fc", one_factor}}, path);
  expect_error([&] { load_encodings(path); }, ErrorKind::kIo, {"e.pt", "layer 'fc'", "do not compose"});
  Encoding wrong_rank = good;
  wrong_rank.factors[1] = project(torch::randn({16, 5}), make_layer(LayerKind::kLinear, {16, 5}), [] {
    LayerConfig q;
    q.weight_bits = 8;
    return q;
  }());
  save_encodings({{"fc", wrong_rank}}, path);
  expect_error([&] { load_encodings(path); }, ErrorKind::kIo, {"layer 'fc'", "do not compose to the shape 16x24"});
  Encoding bad_codes = good;
  bad_codes.factors[0].codes = bad_codes.factors[0].codes.slice(1, 0, 3);
  save_encodings({{"fc", bad_codes}}, path);
  expect_error([&] { load_encodings(path); }, ErrorKind::kIo, {"layer 'fc' factor 0", "do not fit"});
  Encoding nested = good;
  nested.factors[0] = good;  // a factor that is itself decomposed
  save_encodings({{"fc", nested}}, path);
  expect_error([&] { load_encodings(path); }, ErrorKind::kIo, {"layer 'fc'", "do not compose"});
}

TEST(Decompose, ConfigsThatCannotApplyNameTheField) {
  const Layer fc = make_layer(LayerKind::kLinear, {64, 48});
  LayerConfig c = decomposed(Decomposition::kLowRank);
  EXPECT_EQ(check_config(fc, c), "decompose lowrank: needs rank or rank_ratio");
  c.rank = 49;
  EXPECT_EQ(check_config(fc, c), "rank 49: expected 1..48 (min(C_out 64, K 48))");
  c.rank = 6;
  c.weight_bits = 4;
  c.nm = {2, 4};
  EXPECT_EQ(check_config(fc, c),
            "nm 2:4: reduction dimension 6 is not a multiple of M=4 (in lowrank's second factor 64x6)");
  LayerConfig m = decomposed(Decomposition::kMonarch);
  m.blocks = 5;
  EXPECT_EQ(check_config(fc, m), "blocks 5: does not divide the layer's 64 outputs");
  m.blocks = 32;
  EXPECT_EQ(check_config(fc, m), "blocks 32: does not divide the layer's 48 inputs");
  EXPECT_EQ(check_config(make_layer(LayerKind::kConv2d, {16, 8, 3, 3}), decomposed(Decomposition::kMonarch)),
            "decompose monarch: for linear layers and 1x1 convolutions, not a conv2d with a 16x8x3x3 weight");
  EXPECT_EQ(check_config(make_layer(LayerKind::kConv2d, {16, 8, 1, 1}), decomposed(Decomposition::kMonarch)), "");
  EXPECT_EQ(check_config(fc, decomposed(Decomposition::kSmartDeal)),
            "decompose smartdeal: needs weight_bits 2..8 (its coefficients are powers of two of that width), not 32");
  LayerConfig s = decomposed(Decomposition::kSmartDeal, 4);
  s.basis = 5;
  EXPECT_EQ(check_config(fc, s), "basis 5: does not divide the 48 weights of each output channel");
  EXPECT_EQ(check_config(make_layer(LayerKind::kConv2d, {16, 1, 3, 3}, 16),
                         [] {
                           LayerConfig l = decomposed(Decomposition::kLowRank);
                           l.rank = 2;
                           return l;
                         }()),
            "decompose lowrank: a grouped convolution (groups 16) is not decomposed");
  LayerConfig nan_ok = decomposed(Decomposition::kLowRank, 8);
  nan_ok.rank = 2;
  at::Tensor bad = torch::ones({64, 48});
  bad[3][4] = std::nanf("");
  expect_error([&] { project(bad, fc, nan_ok); }, ErrorKind::kInvalidArgument, {"layer", "NaN"});
}

TEST(Decompose, PlanFieldsParseCheckAndRoundTrip) {
  using Json = nlohmann::ordered_json;
  auto parse = [](const std::string& fields) {
    return parse_plan(Json::parse("{\"layers\": {\"fc\": " + fields + "}}"), "p.json");
  };
  expect_error([&] { parse(R"({"decompose": "tucker"})"); }, ErrorKind::kInvalidConfig,
               {"'p.json'", "layers['fc']", "decompose", "none, lowrank, monarch or smartdeal", "tucker"});
  expect_error([&] { parse(R"({"decompose": "lowrank", "rank": 0})"); }, ErrorKind::kInvalidConfig,
               {"layers['fc']", "field rank", "at least 1"});
  expect_error([&] { parse(R"({"rank_ratio": 1.5})"); }, ErrorKind::kInvalidConfig, {"rank_ratio", "(0, 1]"});
  expect_error([&] { parse(R"({"blocks": 0})"); }, ErrorKind::kInvalidConfig, {"blocks", "at least 1"});
  expect_error([&] { parse(R"({"basis": -2})"); }, ErrorKind::kInvalidConfig, {"basis", "at least 1"});
  LayerConfig sparse = decomposed(Decomposition::kSmartDeal, 4);
  sparse.sparsity = 1.0;  // checked when the plan is resolved against each layer
  EXPECT_EQ(check_config(make_layer(LayerKind::kLinear, {8, 9}), sparse), "sparsity 1.000000: expected [0, 1)");
  LayerConfig c = decomposed(Decomposition::kLowRank, 8);
  c.rank_ratio = 0.25;
  const Plan round = parse_plan(Json{{"defaults", to_json(c)}}, "round.json");
  EXPECT_EQ(round.defaults, c);
  EXPECT_EQ(to_json(LayerConfig{}).count("decompose"), 0u);  // plans without decomposition read as before
}

}  // namespace
}  // namespace adze
