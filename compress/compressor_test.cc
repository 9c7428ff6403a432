#include "compress/compressor.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;

Layer linear_layer(const std::string& name, int64_t out, int64_t in) {
  Layer l;
  l.name = name;
  l.weight = name + ".weight";
  l.kind = LayerKind::kLinear;
  l.weight_shape = {out, in};
  l.reduction_dim = 1;
  l.reduction_size = in;
  return l;
}

LayerConfig int4(NMPattern nm = {}, ScaleMethod method = ScaleMethod::kMinMax) {
  LayerConfig c;
  c.weight_bits = 4;
  c.nm = nm;
  c.scale_method = method;
  c.percentile = 90;
  return c;
}

// A linear "model" whose loss is <G, W>: the gradient at the projected weight is exactly G.
struct Probe {
  at::Tensor weight, g;
  at::Tensor seen;  // the weight the forward saw
  at::Tensor loss() {
    seen = weight.detach().clone();
    at::Tensor l = (weight * g).sum();
    l.backward();
    return l;
  }
};

TEST(Compressor, SteForwardSeesTheProjectionAndTheGradientPassesStraightInsideTheRange) {
  torch::manual_seed(0);
  Layer layer = linear_layer("fc", 16, 32);
  const LayerConfig config = int4({}, ScaleMethod::kPercentile);  // clips the largest weights
  Probe p{torch::randn({16, 32}).requires_grad_(true), torch::randn({16, 32}), {}};
  const at::Tensor latent = p.weight.detach().clone();
  Compressor c({CompressedWeight{layer, config, p.weight, {}}});
  c.begin_step();
  p.loss();
  c.end_step();

  const Encoding e = project(latent, layer, config);
  EXPECT_TRUE(torch::equal(p.seen, e.decode()));         // forward with Π(W)
  EXPECT_TRUE(torch::equal(p.weight.detach(), latent));  // the latent weight is back, bit for bit
  const at::Tensor inside = e.representable(latent);
  ASSERT_GT(inside.logical_not().sum().item<int64_t>(), 0) << "the percentile scale should clip some weights";
  ASSERT_GT(inside.sum().item<int64_t>(), 0);
  // Identity inside the clipping range, zero outside.
  EXPECT_TRUE(torch::equal(p.weight.grad().masked_select(inside), p.g.masked_select(inside)));
  EXPECT_TRUE(torch::equal(p.weight.grad().masked_select(inside.logical_not()),
                           torch::zeros({inside.logical_not().sum().item<int64_t>()})));
}

TEST(Compressor, FixedMaskStopsTheGradientOfPrunedWeightsAndDynamicPassesIt) {
  torch::manual_seed(1);
  Layer layer = linear_layer("fc", 8, 16);
  LayerConfig sparse;  // 2:4, kept in float: every kept weight is representable
  sparse.nm = {2, 4};
  for (MaskMode mode : {MaskMode::kFixed, MaskMode::kDynamic}) {
    Probe p{torch::randn({8, 16}).requires_grad_(true), torch::randn({8, 16}), {}};
    CompressorOptions o;
    o.mask = mode;
    Compressor c({CompressedWeight{layer, sparse, p.weight, {}}}, o);
    c.begin_step();
    p.loss();
    c.end_step();
    const at::Tensor kept = p.seen.ne(0);
    EXPECT_TRUE(satisfies_nm(p.seen, {2, 4}));
    EXPECT_TRUE(torch::equal(p.weight.grad().masked_select(kept), p.g.masked_select(kept)));
    const at::Tensor pruned_grad = p.weight.grad().masked_select(kept.logical_not());
    if (mode == MaskMode::kFixed)
      EXPECT_TRUE(torch::equal(pruned_grad, torch::zeros_like(pruned_grad)));
    else
      EXPECT_TRUE(torch::equal(pruned_grad, p.g.masked_select(kept.logical_not())));
  }
}

TEST(Compressor, FixedMaskIsKeptWhileTheWeightsMove) {
  torch::manual_seed(2);
  Layer layer = linear_layer("fc", 8, 16);
  Probe p{torch::randn({8, 16}).requires_grad_(true), torch::randn({8, 16}), {}};
  Compressor c({CompressedWeight{layer, int4({2, 4}), p.weight, {}}});
  torch::optim::SGD sgd({p.weight}, 0.5);
  c.step([&] { return p.loss(); }, sgd);
  const at::Tensor first = p.seen.ne(0);
  for (int i = 0; i < 5; ++i) c.step([&] { return p.loss(); }, sgd);
  EXPECT_TRUE(torch::equal(p.seen.ne(0).logical_or(first), first));  // nothing outside the first mask
  auto encodings = c.finish();
  ASSERT_EQ(encodings.count("fc"), 1u);
  EXPECT_TRUE(torch::equal(p.weight.detach(), encodings.at("fc").decode()));
  EXPECT_TRUE(satisfies_nm(p.weight.detach(), {2, 4}));
  expect_error([&] { c.begin_step(); }, ErrorKind::kInvalidArgument, {"after finish"});
}

// `steps` ADMM steps (all in the ADMM phase) of SGD on ½‖W − target‖²; the residual every 10 steps.
std::vector<double> admm_least_squares(Compressor& c, at::Tensor& w, const at::Tensor& target, int steps) {
  torch::optim::SGD sgd({w}, 0.05);
  std::vector<double> residuals;
  for (int step = 0; step < steps; ++step) {
    EXPECT_TRUE(c.in_admm_phase());
    c.step(
        [&] {
          at::Tensor l = (w - target).pow(2).sum() * 0.5;
          l.backward();
          return l;
        },
        sgd);
    if (step % 10 == 9) residuals.push_back(c.admm_residual());
  }
  return residuals;
}

TEST(Compressor, AdmmResidualDecreasesAndEndsOnTheConstraintSet) {
  // Least squares toward a dense target: the unconstrained optimum is far from 1:4 + INT4, so only the
  // ADMM pull brings W to Z.
  torch::manual_seed(3);
  Layer layer = linear_layer("fc", 16, 32);
  at::Tensor w = torch::randn({16, 32}).requires_grad_(true);
  const at::Tensor target = torch::randn({16, 32});
  CompressorOptions o;
  o.strategy = Strategy::kAdmm;
  o.admm_steps = 300;
  o.admm_interval = 10;
  o.rho = 0.05;
  o.rho_growth = 1.2;
  o.rho_max = 5;
  Compressor c({CompressedWeight{layer, int4({1, 4}), w, {}}}, o);
  const std::vector<double> residuals = admm_least_squares(c, w, target, 300);
  // Not monotone (the 1:4 mask of Z can flip while U accumulates), but it goes to zero: early, middle, end.
  ASSERT_EQ(residuals.size(), 30u);
  EXPECT_GT(residuals[0], 0.5);
  EXPECT_LT(residuals[20], 0.5 * residuals[0]);
  EXPECT_LT(residuals.back(), 0.01 * residuals[0]);
  EXPECT_GT(c.rho(), o.rho);
  auto encodings = c.finish();
  EXPECT_TRUE(satisfies_nm(w.detach(), {1, 4}));
  EXPECT_TRUE(torch::equal(w.detach(), encodings.at("fc").decode()));
  EXPECT_EQ(c.latents().count("fc"), 1u);
}

// Least squares of w toward `target` for `steps` steps through the compressor; the factor by which the loss fell
// (last / first), then the Encodings, which must decode to w.
double least_squares_drop(Compressor& c, const at::Tensor& w, const at::Tensor& target,
                          torch::optim::Optimizer& optimizer, int steps) {
  auto loss = [&] {
    at::Tensor l = (w - target).pow(2).mean();
    l.backward();
    return l;
  };
  const double first = c.step(loss, optimizer).item<double>();
  double last = first;
  for (int step = 0; step < steps; ++step) last = c.step(loss, optimizer).item<double>();
  const auto encodings = c.finish();
  EXPECT_EQ(encodings.at("fc").factors.size(), 2u);
  EXPECT_TRUE(torch::equal(w.detach(), encodings.at("fc").decode()));
  return last / first;
}

// Rank 4 with INT4 factors.
LayerConfig lowrank4_int4() {
  LayerConfig c = int4();
  c.decompose = Decomposition::kLowRank;
  c.rank = 4;
  return c;
}

// A decomposed plan: STE's forward sees the product of the factors, the gradient passes everywhere (a product
// has no clipping range), and fine-tuning lowers a loss the one-shot projection left high.
TEST(Compressor, SteThroughALowRankProjectionLowersTheLoss) {
  torch::manual_seed(5);
  const Layer layer = linear_layer("fc", 24, 32);
  const LayerConfig config = lowrank4_int4();
  // Least squares toward a target of rank 4 from a dense start: the start's best rank-4 part is not the target.
  const at::Tensor target = torch::randn({24, 4}).mm(torch::randn({4, 32}));
  at::Tensor w = torch::randn({24, 32}).requires_grad_(true);
  Probe p{w, torch::randn({24, 32}), {}};
  CompressorOptions through_projection;
  through_projection.train_factors = false;
  Compressor probe({CompressedWeight{layer, config, p.weight, {}}}, through_projection);
  const at::Tensor latent = w.detach().clone();
  probe.begin_step();
  p.loss();
  probe.end_step();
  EXPECT_TRUE(torch::equal(p.seen, project(latent, layer, config).decode()));
  EXPECT_TRUE(torch::equal(w.grad(), p.g));  // straight through, nowhere gated
  w.mutable_grad().zero_();

  Compressor c({CompressedWeight{layer, config, w, {}}}, through_projection);
  torch::optim::Adam adam({w}, 0.05);
  EXPECT_LT(least_squares_drop(c, w, target, adam, 200), 0.05);
}

// The default for decomposed layers: the factors themselves are latent. The forward sees the product of their
// projections, and the gradient reaches each factor through the product (checked against the chain rule).
TEST(Compressor, SteTrainsTheFactorsThemselves) {
  torch::manual_seed(7);
  const Layer layer = linear_layer("fc", 24, 32);
  const LayerConfig config = lowrank4_int4();
  at::Tensor w = torch::randn({24, 32}).requires_grad_(true);
  Probe p{w, torch::randn({24, 32}), {}};
  Compressor probe({CompressedWeight{layer, config, p.weight, {}}});
  const std::vector<at::Tensor> factors = probe.factor_parameters();
  ASSERT_EQ(factors.size(), 2u);
  EXPECT_EQ(factors[0].sizes(), (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(factors[1].sizes(), (std::vector<int64_t>{24, 4}));
  // They start from the one-shot projection's factors.
  const Encoding oneshot = project(w.detach(), layer, config);
  EXPECT_TRUE(torch::equal(factors[0].detach(), oneshot.factors[0].decode()));
  probe.begin_step();
  p.loss();
  probe.end_step();
  const at::Tensor q1 = factors[0].detach(), q2 = factors[1].detach();  // on their grids already: Π(q) = q
  EXPECT_TRUE(torch::allclose(p.seen, q2.mm(q1), 1e-5, 1e-5));
  EXPECT_FALSE(w.grad().defined());  // the dense parameter does not train
  EXPECT_TRUE(torch::allclose(factors[1].grad(), p.g.mm(q1.t()), 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(factors[0].grad(), q2.t().mm(p.g), 1e-4, 1e-4));

  // Trained by the optimizer that holds them, toward a rank-4 target.
  const at::Tensor target = torch::randn({24, 4}).mm(torch::randn({4, 32}));
  w = torch::randn({24, 32}).requires_grad_(true);
  Compressor c({CompressedWeight{layer, config, w, {}}});
  torch::optim::Adam missing({w}, 0.05);
  expect_error([&] { c.step([&] { return w.sum(); }, missing); }, ErrorKind::kInvalidArgument, {"factor_parameters()"});
  torch::optim::Adam adam(c.factor_parameters(), 0.05);
  EXPECT_LT(least_squares_drop(c, w, target, adam, 300), 0.05);
  EXPECT_EQ(c.latents().at("fc").sizes(), w.sizes());

  // Monarch's factors train the same way: the forward sees the product of the projected blocks.
  Layer square = linear_layer("sq", 16, 16);
  LayerConfig monarch;
  monarch.decompose = Decomposition::kMonarch;
  monarch.blocks = 4;
  at::Tensor m = torch::randn({16, 16}).requires_grad_(true);
  Compressor mc({CompressedWeight{square, monarch, m, {}}});
  Probe mp{m, torch::randn({16, 16}), {}};
  mc.begin_step();
  mp.loss();
  mc.end_step();
  EXPECT_TRUE(torch::allclose(mp.seen, project(m.detach(), square, monarch).decode(), 1e-5, 1e-5));
  for (const auto& f : mc.factor_parameters())
    EXPECT_TRUE(f.grad().defined() && f.grad().abs().sum().item<double>() > 0);
}

// ADMM toward a rank constraint: Z is the truncated SVD, and W ends on it.
TEST(Compressor, AdmmTowardARankConstraintEndsOnIt) {
  torch::manual_seed(6);
  Layer layer = linear_layer("fc", 16, 32);
  LayerConfig config;
  config.decompose = Decomposition::kLowRank;
  config.rank = 3;
  at::Tensor w = torch::randn({16, 32}).requires_grad_(true);
  const at::Tensor target = torch::randn({16, 32});
  CompressorOptions o;
  o.strategy = Strategy::kAdmm;
  o.admm_steps = 200;
  o.rho = 0.05;
  o.rho_growth = 1.3;
  o.rho_max = 10;
  Compressor c({CompressedWeight{layer, config, w, {}}}, o);
  admm_least_squares(c, w, target, 200);
  EXPECT_LT(c.admm_residual(), 0.02);
  c.finish();
  const at::Tensor s = torch::linalg_svdvals(w.detach().to(torch::kDouble));
  EXPECT_LT(s[3].item<double>(), 1e-5 * s[0].item<double>());  // rank 3
}

TEST(Compressor, AdmmHandsOverToSteAfterItsSteps) {
  torch::manual_seed(4);
  Layer layer = linear_layer("fc", 8, 16);
  Probe p{torch::randn({8, 16}).requires_grad_(true), torch::randn({8, 16}), {}};
  CompressorOptions o;
  o.strategy = Strategy::kAdmm;
  o.admm_steps = 3;
  Compressor c({CompressedWeight{layer, int4({2, 4}), p.weight, {}}}, o);
  torch::optim::SGD sgd({p.weight}, 0.01);
  for (int i = 0; i < 3; ++i) {
    c.step([&] { return p.loss(); }, sgd);
    EXPECT_FALSE(satisfies_nm(p.seen, {2, 4}));  // ADMM: the forward uses W itself
  }
  c.step([&] { return p.loss(); }, sgd);
  EXPECT_FALSE(c.in_admm_phase());
  EXPECT_TRUE(satisfies_nm(p.seen, {2, 4}));  // STE: the forward uses Π(W)
}

// PyTorch's own LSQ (_fake_quantize_learnable_per_channel_affine) is the reference for the scale gradient. Its
// "inside" is where round(W/s) + z is in range, ours where W/s is: they differ only within half a step outside
// the range, so the probe's gradient is zero there.
TEST(Compressor, LearnedScaleGradientIsPyTorchsLsqGradientTimesTheScale) {
  torch::manual_seed(5);
  Layer layer = linear_layer("fc", 16, 32);
  for (bool symmetric : {true, false}) {
    LayerConfig config = int4({}, ScaleMethod::kPercentile);  // clips the largest weights
    config.symmetric = symmetric;
    config.nm = {2, 4};  // pruned weights must not count
    const at::Tensor w0 = torch::randn({16, 32});
    const Encoding e = project(w0, layer, config);
    const at::Tensor s = e.scale, z = e.zero_point;
    const at::Tensor x = w0 / s.unsqueeze(1) + z.unsqueeze(1).to(torch::kFloat);
    const double qmin = symmetric ? -8 : 0, qmax = symmetric ? 7 : 15;
    const at::Tensor ambiguous = (x.gt(qmax) & x.lt(qmax + 0.5)) | (x.lt(qmin) & x.gt(qmin - 0.5));
    Probe p{w0.clone().requires_grad_(true), torch::randn({16, 32}).masked_fill(ambiguous, 0), {}};
    CompressorOptions o;
    o.learn_scales = true;
    Compressor c({CompressedWeight{layer, config, p.weight, {}}}, o);
    ASSERT_EQ(c.scale_parameters().size(), 1u);
    const at::Tensor log_scale = c.scale_parameters()[0];
    EXPECT_TRUE(torch::allclose(log_scale.exp(), s));
    c.begin_step();
    p.loss();
    c.end_step();

    const at::Tensor kept = e.mask.to(torch::kFloat);  // a linear weight's encoded layout is its own
    const at::Tensor scale = log_scale.detach().exp().requires_grad_(true);
    const at::Tensor fq = at::_fake_quantize_learnable_per_channel_affine(
        w0, scale, z.to(torch::kFloat), 0, static_cast<int64_t>(qmin), static_cast<int64_t>(qmax), 1.0);
    (fq * kept * p.g).sum().backward();
    ASSERT_TRUE(log_scale.grad().defined());
    ASSERT_GT(x.lt(qmin).logical_or(x.gt(qmax)).sum().item<int64_t>(), 0) << "some weights should clip";
    EXPECT_TRUE(torch::allclose(log_scale.grad(), scale.grad() * scale.detach(), 1e-4, 1e-5))
        << log_scale.grad() << scale.grad() * scale.detach();
    EXPECT_TRUE(torch::equal(p.seen, project(w0, layer, config, {}, {scale.detach(), z}).decode()));
  }
}

TEST(Compressor, LearnedScalesMoveTowardLessErrorAndTheEncodingKeepsThem) {
  // Loss ‖Π(W) − W‖² with W held still: only the scales train. From min-max scales at 2 bits (too wide for a
  // Gaussian row), every row's scale must shrink, and the error fall well below min-max's. (Not to the optimum
  // of scale_method mse: the straight-through gradient of a rounding error is not its true gradient.)
  torch::manual_seed(6);
  Layer layer = linear_layer("fc", 8, 256);
  LayerConfig config = int4();
  config.weight_bits = 2;
  const at::Tensor w0 = torch::randn({8, 256});
  at::Tensor w = w0.clone().requires_grad_(true);
  CompressorOptions o;
  o.learn_scales = true;
  Compressor c({CompressedWeight{layer, config, w, {}}}, o);
  torch::optim::Adam adam(c.scale_parameters(), 0.02);
  const double minmax = (project(w0, layer, config).decode() - w0).pow(2).sum().item<double>();
  for (int i = 0; i < 300; ++i)
    c.step(
        [&] {
          at::Tensor l = (w - w0).pow(2).sum();
          l.backward();
          return l;
        },
        adam);
  const auto encodings = c.finish();
  const Encoding& e = encodings.at("fc");
  EXPECT_TRUE(torch::equal(w0, c.latents().at("fc")));  // the latent weight never moved
  EXPECT_TRUE(torch::allclose(e.scale, c.scale_parameters()[0].detach().exp()));
  const double learned = (e.decode() - w0).pow(2).sum().item<double>();
  EXPECT_TRUE(e.scale.lt(project(w0, layer, config).scale).all().item<bool>());
  EXPECT_LT(learned, 0.6 * minmax) << "min-max " << minmax;
}

TEST(Compressor, OnlyUniformScalesThatAreNotPowersOfTwoLearn) {
  Layer layer = linear_layer("fc", 4, 8);
  CompressorOptions o;
  o.learn_scales = true;
  LayerConfig pow2 = int4(), shift = int4(), sparse;
  pow2.quantizer = Quantizer::kPow2;
  shift.pow2_scale = true;
  sparse.nm = {2, 4};
  for (const LayerConfig& config : {pow2, shift, sparse}) {
    Compressor c({CompressedWeight{layer, config, torch::randn({4, 8}).requires_grad_(true), {}}}, o);
    EXPECT_EQ(c.layer_names().size(), 1u);
    EXPECT_TRUE(c.scale_parameters().empty());
  }
}

TEST(Compressor, LayersThePlanLeavesAloneAreNotTouched) {
  Layer layer = linear_layer("fc", 4, 8);
  at::Tensor w = torch::randn({4, 8}).requires_grad_(true);
  Compressor c({CompressedWeight{layer, LayerConfig{}, w, {}}});
  EXPECT_TRUE(c.layer_names().empty());
  EXPECT_TRUE(c.finish().empty());
}

TEST(Compressor, RejectsBadOptions) {
  CompressorOptions o;
  o.admm_interval = 0;
  expect_error([&] { Compressor c({}, o); }, ErrorKind::kInvalidConfig, {"admm_interval"});
}

}  // namespace
}  // namespace adze
