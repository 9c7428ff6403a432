#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <iostream>
#include <thread>

#include "compress/compressor.h"
#include "compress/gradient_average.h"
#include "compress/pass.h"
#include "distributed/gloo_sync.h"
#include "model/frontend.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using nlohmann::json;
using testing::expect_error;
using testing::fixture;
using testing::TempDir;

// 20 STE steps on the traced CNN fixture (2:4 + INT4 on its classifier, INT8 elsewhere, distilled from the
// uncompressed model), batch 8 over `sync`'s ranks, which share out the choice of scales; the model's weights
// after.
// `moved`, when set: how far the latent weights moved from where the fine-tune started.
std::vector<at::Tensor> finetuned_weights(const std::shared_ptr<GradientSync>& sync, double* moved = nullptr) {
  Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{8, 3, 16, 16}, "float32"});
  Model teacher = load_torchscript(fixture("cnn_bn_traced.pt"), {{8, 3, 16, 16}, "float32"});
  const Dataset data = load_dataset("tensors:" + fixture("tensors_small.pt"), {"train", 0, 0});
  CompressionContext c;
  c.model = &model;
  c.reference = &teacher;
  c.table = build_layer_table(model);
  c.train_data = &data;
  c.seed = 7;
  c.sync = sync;
  c.plan = resolve_plan(parse_plan(json::parse(R"({"defaults": {"weight_bits": 8},
                                                 "layers": {"classifier": {"weight_bits": 4, "nm": "2:4"}}})"),
                                   "plan.json"),
                        c.table, "plan.json");
  run_pipeline(parse_pipeline(json::parse(R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights",
      {"name": "finetune.ste", "options": {"steps": 20, "lr": 1e-2, "batch_size": 8, "distill": 0.5,
                                            "share_scales": "always"}}]})"),
                              "p.json"),
               c);
  std::vector<at::Tensor> out;
  for (const auto& t : model.tensors()) out.push_back(t.value.clone());
  for (const auto& [name, latent] : c.latents) {
    out.push_back(latent.clone());
    if (moved) *moved = std::max(*moved, (latent - c.originals.at(name)).abs().max().item<double>());
  }
  return out;
}

// Runs `body(rank, sync)` on two Gloo ranks, each a thread of this process, meeting through the file `store`;
// returns what each rank threw ("" for none; an adze::Error as "kind: message").
std::vector<std::string> on_two_gloo_ranks(const std::string& store,
                                           const std::function<void(int, std::shared_ptr<GradientSync>)>& body,
                                           double timeout_s = 300) {
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      const auto i = static_cast<std::size_t>(r);
      try {
        Rendezvous rv;
        rv.rank = r;
        rv.size = 2;
        rv.file = store;
        rv.timeout_s = timeout_s;
        body(r, gloo_gradient_sync(rv));
      } catch (const Error& e) {
        errors[i] = std::string(to_string(e.kind())) + ": " + e.what();
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

// The issue's bar: two Gloo ranks, each on half of every batch, end where one rank on the whole batch does.
TEST(DataParallel, TwoGlooRanksMatchOneRankOnTheWholeBatch) {
  double moved_by_training = 0;
  const std::vector<at::Tensor> one = finetuned_weights(nullptr, &moved_by_training);
  TempDir tmp;
  std::vector<std::vector<at::Tensor>> ranks(2);
  const auto errors = on_two_gloo_ranks(tmp.file("store"), [&](int r, std::shared_ptr<GradientSync> sync) {
    ranks[static_cast<std::size_t>(r)] = finetuned_weights(sync);
  });
  ASSERT_EQ(errors, std::vector<std::string>(2)) << errors[0] << " | " << errors[1];
  ASSERT_EQ(ranks[0].size(), one.size());
  ASSERT_EQ(ranks[1].size(), one.size());
  double worst = 0;
  for (std::size_t i = 0; i < one.size(); ++i) {
    for (const auto& rank : ranks) worst = std::max(worst, (rank[i] - one[i]).abs().max().item<double>());
  }
  EXPECT_GT(moved_by_training, 1e-3);  // the comparison means something: the weights moved
  std::cout << "largest difference from one rank: " << worst << "\n";
  EXPECT_LE(worst, 1e-5);
}

// Counts the averages begun, around a real Gloo group.
class CountingSync : public GradientSync {
 public:
  explicit CountingSync(std::shared_ptr<GradientSync> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  void average(std::vector<at::Tensor>& tensors) override { inner_->average(tensors); }
  void sum(std::vector<at::Tensor>& tensors) override {
    ++sums;
    inner_->sum(tensors);
  }
  std::unique_ptr<PendingAverage> start_average(std::vector<at::Tensor>& tensors) override {
    ++started;
    return inner_->start_average(tensors);
  }
  int started = 0, sums = 0;

 private:
  std::shared_ptr<GradientSync> inner_;
};

// A two-layer network with a parameter the loss does not use; its gradients on rank r's own data.
struct TwoLayers {
  at::Tensor w1, b1, w2, b2, unused;
  TwoLayers() {  // the same weights on every rank (a generator of its own: the ranks are threads)
    auto gen = at::detail::createCPUGenerator(3);
    w1 = torch::randn({16, 8}, gen).requires_grad_(true);
    b1 = torch::randn({16}, gen).requires_grad_(true);
    w2 = torch::randn({4, 16}, gen).requires_grad_(true);
    b2 = torch::randn({4}, gen).requires_grad_(true);
    unused = torch::randn({5}, gen).requires_grad_(true);
  }
  // Not in the order backward reaches them (a module's parameter order need not be), the unused one among them.
  std::vector<at::Tensor> params() const { return {w2, w1, unused, b1, b2}; }
  static constexpr std::size_t kUnused = 2;
  // `on_hidden_gradient` runs when backward reaches the first layer's output, after the second layer's
  // parameters have their gradients.
  void backward(int rank, const std::function<void()>& on_hidden_gradient = {}) const {
    const at::Tensor x = torch::arange(24, torch::kFloat).reshape({3, 8}).div(10).add(rank);
    at::Tensor h = torch::addmm(b1, x, w1.t());
    if (on_hidden_gradient) h.register_hook([on_hidden_gradient](const at::Tensor&) { on_hidden_gradient(); });
    torch::addmm(b2, torch::relu(h), w2.t()).pow(2).sum().backward();
  }
};

// Buckets of one parameter each, and one bucket of all. With one each: once planned again after the first step
// (in the order backward gave the gradients, the unused parameter last), the second layer's averages begin
// during backward. Either way every gradient ends as the mean of both ranks' own, a parameter without a gradient
// keeps none, and backward passes outside begin()…finish(), or after the average is gone, send nothing.
TEST(DataParallel, BucketsAreSentDuringBackwardAndHoldTheMean) {
  std::vector<std::vector<at::Tensor>> own(2);  // each rank's gradients, alone
  for (int r = 0; r < 2; ++r) {
    const TwoLayers net;
    net.backward(r);
    for (const auto& p : net.params())
      own[static_cast<std::size_t>(r)].push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
  }
  TempDir tmp;
  for (const int64_t bucket_bytes : {int64_t{1}, GradientAverage::kBucketBytes}) {
    SCOPED_TRACE("bucket_bytes " + std::to_string(bucket_bytes));
    const bool one_each = bucket_bytes == 1;
    std::vector<int> sent_before_hidden(2, -1), buckets(2), sent_outside(2, -1), sent_after(2, -1);
    std::vector<std::vector<at::Tensor>> averaged(2);
    const auto errors = on_two_gloo_ranks(
        tmp.file("store" + std::to_string(bucket_bytes)), [&](int r, std::shared_ptr<GradientSync> gloo) {
          const auto i = static_cast<std::size_t>(r);
          CountingSync sync(std::move(gloo));
          const TwoLayers net;
          {
            GradientAverage average(net.params(), sync, bucket_bytes);
            buckets[i] = average.buckets();
            for (int step = 0; step < 2; ++step) {  // the second, after the buckets were planned again
              for (const auto& p : net.params())
                if (p.grad().defined()) p.mutable_grad().zero_();
              average.begin();
              const int before = sync.started;
              net.backward(r, [&] { sent_before_hidden[i] = sync.started - before; });
              average.finish();
            }
            for (const auto& p : net.params())
              averaged[i].push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
            const int before = sync.started;
            net.backward(r);
            sent_outside[i] = sync.started - before;
          }
          const int before = sync.started;
          net.backward(r);
          sent_after[i] = sync.started - before;
        });
    ASSERT_EQ(errors, std::vector<std::string>(2)) << errors[0] << " | " << errors[1];
    for (std::size_t r = 0; r < 2; ++r) {
      EXPECT_EQ(buckets[r], one_each ? 5 : 1);
      if (one_each)
        EXPECT_GE(sent_before_hidden[r], 2) << "b2 and w2 are averaged before backward reaches the first layer";
      else
        EXPECT_EQ(sent_before_hidden[r], 0) << "the one bucket waits for the first layer";
      EXPECT_EQ(sent_outside[r], 0);
      EXPECT_EQ(sent_after[r], 0);
      ASSERT_EQ(averaged[r].size(), 5u);
      for (std::size_t p = 0; p < 5; ++p) {
        if (p == TwoLayers::kUnused) {
          EXPECT_FALSE(averaged[r][p].defined());
          continue;
        }
        ASSERT_TRUE(averaged[r][p].defined());
        EXPECT_TRUE(torch::allclose(averaged[r][p], (own[0][p] + own[1][p]) / 2, 1e-6, 1e-6)) << "parameter " << p;
      }
    }
  }
}

// Each rank chooses the scales of its share of every layer's channels and the ranks exchange them
// (compress/compressor.h): what each rank's parameters hold after begin_step() is, bit for bit, what one
// Compressor choosing every scale itself gives, at the first step and after the weights move.
TEST(DataParallel, RanksShareOutTheChoiceOfScalesAndProjectAsOneProcessDoes) {
  auto layer = [](std::string name, LayerKind kind, Shape shape, int reduction_dim) {
    Layer l;
    l.name = std::move(name);
    l.kind = kind;
    l.weight_shape = shape;
    l.reduction_dim = reduction_dim;
    l.reduction_size = shape.at(static_cast<std::size_t>(reduction_dim));
    return l;
  };
  auto config = [](int bits, ScaleMethod method, Granularity g) {
    LayerConfig c;
    c.weight_bits = bits;
    c.scale_method = method;
    c.granularity = g;
    return c;
  };
  LayerConfig nm = config(4, ScaleMethod::kMse, Granularity::kPerChannel);
  nm.nm = {2, 4};
  LayerConfig grouped = config(8, ScaleMethod::kMinMax, Granularity::kPerGroup);
  grouped.symmetric = false;
  grouped.group_size = 16;
  const std::vector<std::pair<Layer, LayerConfig>> layers = {
      {layer("fc", LayerKind::kLinear, {10, 96}, 1), config(4, ScaleMethod::kMse, Granularity::kPerChannel)},
      {layer("conv", LayerKind::kConv2d, {7, 8, 3, 3}, 1), nm},
      {layer("matmul", LayerKind::kMatmul, {64, 9}, 0), grouped},
      {layer("tensor", LayerKind::kLinear, {6, 32}, 1), config(8, ScaleMethod::kMse, Granularity::kPerTensor)}};
  auto gen = at::detail::createCPUGenerator(5);
  std::vector<at::Tensor> start, moved;  // start: read by projected() at each call
  for (const auto& [l, c] : layers) {
    start.push_back(torch::randn(std::vector<int64_t>(l.weight_shape.begin(), l.weight_shape.end()), gen));
    moved.push_back(0.1 * torch::randn(start.back().sizes(), gen));
  }
  // Two begin_steps (the weights moved between them); the parameters after each.
  auto projected = [&](std::shared_ptr<GradientSync> sync) {
    std::vector<at::Tensor> params;
    std::vector<CompressedWeight> weights;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      params.push_back(start[i].clone());
      weights.push_back({layers[i].first, layers[i].second, params.back(), {}});
    }
    CompressorOptions options;
    options.sync = std::move(sync);
    options.share_scales = ScaleSharing::kAlways;  // these layers are far below kShareScalesFrom
    Compressor compressor(std::move(weights), options);
    std::vector<at::Tensor> out;
    for (int step = 0; step < 2; ++step) {
      compressor.begin_step();
      for (const auto& p : params) out.push_back(p.clone());
      compressor.end_step();
      for (std::size_t i = 0; i < params.size(); ++i) params[i].add_(moved[i]);
    }
    return out;
  };
  const std::vector<at::Tensor> alone = projected(nullptr);
  TempDir tmp;
  const std::vector<at::Tensor> finite = start;
  std::vector<std::vector<at::Tensor>> ranks(2);
  std::vector<int> sums(2);
  auto errors = on_two_gloo_ranks(tmp.file("store"), [&](int r, std::shared_ptr<GradientSync> gloo) {
    auto sync = std::make_shared<CountingSync>(std::move(gloo));
    ranks[static_cast<std::size_t>(r)] = projected(sync);
    sums[static_cast<std::size_t>(r)] = sync->sums;
  });
  ASSERT_EQ(errors, std::vector<std::string>(2)) << errors[0] << " | " << errors[1];
  for (std::size_t r = 0; r < 2; ++r) {
    EXPECT_EQ(sums[r], 2) << "one exchange a step";
    ASSERT_EQ(ranks[r].size(), alone.size());
    for (std::size_t i = 0; i < alone.size(); ++i)
      EXPECT_TRUE(torch::equal(ranks[r][i], alone[i]))
          << "rank " << r << ", step " << i / layers.size() + 1 << ", layer " << layers[i % layers.size()].first.name;
  }
  // A NaN in the channels rank 1 chooses (fc's last): both ranks stop with the same error, neither waits (a rank
  // left waiting fails the test in 30 s).
  start[0] = finite[0].clone();
  start[0][9][0] = NAN;
  errors = on_two_gloo_ranks(
      tmp.file("store-nan"), [&](int, std::shared_ptr<GradientSync> sync) { projected(std::move(sync)); }, 30);
  EXPECT_EQ(errors[0], errors[1]);
  EXPECT_NE(errors[0].find("failed to project layer 'fc': the weight contains NaN or Inf"), std::string::npos)
      << errors[0];
  EXPECT_EQ(errors[0].rfind(to_string(ErrorKind::kInvalidArgument), 0), 0u) << errors[0];
}

TEST(DataParallel, BadRendezvousIsRefusedByName) {
  Rendezvous r;
  r.rank = 2;
  r.size = 2;
  r.file = "/tmp/x";
  expect_error([&] { gloo_gradient_sync(r); }, ErrorKind::kInvalidArgument, {"rank 2 of 2"});
  setenv("ADZE_WORLD_SIZE", "2", 1);
  setenv("ADZE_RANK", "x", 1);
  expect_error([&] { rendezvous_from_environment(); }, ErrorKind::kInvalidArgument, {"ADZE_RANK='x'"});
  setenv("ADZE_RANK", "1", 1);
  expect_error([&] { rendezvous_from_environment(); }, ErrorKind::kInvalidArgument, {"ADZE_STORE", "ADZE_MASTER"});
  setenv("ADZE_MASTER", "localhost", 1);
  expect_error([&] { rendezvous_from_environment(); }, ErrorKind::kInvalidArgument, {"ADZE_MASTER='localhost'"});
  setenv("ADZE_MASTER", "localhost:29500", 1);
  const auto rv = rendezvous_from_environment();
  ASSERT_TRUE(rv);
  EXPECT_EQ(rv->rank, 1);
  EXPECT_EQ(rv->port, 29500);
  for (const char* v : {"ADZE_WORLD_SIZE", "ADZE_RANK", "ADZE_MASTER"}) unsetenv(v);
  EXPECT_FALSE(rendezvous_from_environment());
}

}  // namespace
}  // namespace adze
