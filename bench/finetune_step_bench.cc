// Cost of one fine-tuning step with STE and fake-quant against a plain training step of the same model, side
// by side: fmnist-cnn (random weights, traced at batch 128), AdamW, one thread.
//
//   build/bench/finetune_step_bench
//
// Plain: forward, cross-entropy, backward, optimizer step. STE: the same through Compressor::step with the
// plan 2:4 + INT4 per-channel weights (first conv INT8) and INT8 activation fake-quant on every layer input,
// so each step also projects every weight (N:M mask, scales, codes) and gates the gradient. The bar: STE
// ≤ 1.5× plain. Weight scales: min-max or MSE (chosen afresh every step), or learned (LSQ: kept, and trained
// from their own gradient). Then one decomposed 1024×1024 linear layer's step, training its factors (in the
// product, or with the graph computing through them) or the dense weight, against the plain layer's step.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "compress/activation_quant.h"
#include "compress/compressor.h"
#include "compress/decompose.h"
#include "compress/factored_graph.h"
#include "examples/reference/models.h"
#include "model/frontend.h"

namespace {

constexpr int64_t kBatch = 128;

struct Setup {
  adze::reference::FmnistCnn net;
  adze::Model model;
  adze::Dataset data;
  Setup()
      : model([this] {
          torch::manual_seed(0);
          net = adze::reference::FmnistCnn();
          return adze::trace_module(
              *net, [&](const at::Tensor& x) { return net->forward(x); }, {{kBatch, 1, 28, 28}, "float32"},
              "fmnist-cnn");
        }()) {
    data.inputs = torch::randn({kBatch * 4, 1, 28, 28});
    data.targets = torch::randint(10, {kBatch * 4});
    data.num_classes = 10;
  }
  at::Tensor loss() {
    at::Tensor l = torch::nn::functional::cross_entropy(model.forward(data.inputs.slice(0, 0, kBatch)),
                                                        data.targets.slice(0, 0, kBatch));
    l.backward();
    return l;
  }
};

void BM_PlainStep(benchmark::State& state) {
  at::set_num_threads(1);
  Setup s;
  std::vector<at::Tensor> params = s.model.parameters();
  for (auto& p : params) p.requires_grad_(true);
  torch::optim::AdamW optimizer(params, 1e-4);
  for (auto _ : state) {
    optimizer.zero_grad();
    benchmark::DoNotOptimize(s.loss());
    optimizer.step();
  }
}
BENCHMARK(BM_PlainStep)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void ste_step(benchmark::State& state, adze::ScaleMethod method, bool learn_scales = false) {
  at::set_num_threads(1);
  Setup s;
  adze::CompressionContext c;
  c.model = &s.model;
  c.table = adze::build_layer_table(s.model);
  c.data = &s.data;
  std::vector<adze::CompressedWeight> weights;
  for (const auto& layer : c.table.layers) {
    adze::LayerConfig config;
    config.weight_bits = layer.name == "features.0" ? 8 : 4;
    config.nm = layer.name == "features.0" ? adze::NMPattern{} : adze::NMPattern{2, 4};
    config.scale_method = method;
    config.act_bits = 8;
    c.plan.layers[layer.name] = config;
    const int index = s.model.find_tensor(layer.weight);
    weights.push_back({layer, config, s.model.tensors()[static_cast<std::size_t>(index)].value, {}});
  }
  adze::quantize_activations(c, {"minmax", 99.99, 4});
  std::vector<at::Tensor> params = s.model.parameters();
  for (auto& p : params) p.requires_grad_(true);
  adze::CompressorOptions options;
  options.learn_scales = learn_scales;
  adze::Compressor compressor(std::move(weights), options);
  torch::optim::AdamW optimizer(params, 1e-4);
  if (learn_scales)
    optimizer.add_param_group({compressor.scale_parameters(), std::make_unique<torch::optim::AdamWOptions>(
                                                                  torch::optim::AdamWOptions(1e-2).weight_decay(0))});
  for (auto _ : state) benchmark::DoNotOptimize(compressor.step([&] { return s.loss(); }, optimizer));
}

void BM_SteStep_2of4_Int4_A8(benchmark::State& state) { ste_step(state, adze::ScaleMethod::kMinMax); }
BENCHMARK(BM_SteStep_2of4_Int4_A8)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_SteStep_2of4_Int4Mse_A8(benchmark::State& state) { ste_step(state, adze::ScaleMethod::kMse); }
BENCHMARK(BM_SteStep_2of4_Int4Mse_A8)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_SteStep_2of4_Int4Learned_A8(benchmark::State& state) { ste_step(state, adze::ScaleMethod::kMse, true); }
BENCHMARK(BM_SteStep_2of4_Int4Learned_A8)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

// One 1024×1024 linear layer at batch 64 (least squares toward a random target), a step: plain, and STE with
// the layer at rank 128 with INT8 factors, training the factors themselves or the dense weight through the
// whole decomposition (a truncated SVD every step).
void decomposed_step(benchmark::State& state, int mode) {  // 0: plain, 1: factors, 2: through the projection
  at::set_num_threads(1);
  torch::manual_seed(0);
  adze::Layer layer;
  layer.name = "fc";
  layer.weight = "fc.weight";
  layer.kind = adze::LayerKind::kLinear;
  layer.weight_shape = {1024, 1024};
  layer.reduction_dim = 1;
  layer.reduction_size = 1024;
  adze::LayerConfig config;
  config.weight_bits = 8;
  config.decompose = adze::Decomposition::kLowRank;
  config.rank = 128;
  at::Tensor w = (torch::randn({1024, 1024}) / 32).requires_grad_(true);
  const at::Tensor x = torch::randn({64, 1024}), target = torch::randn({64, 1024});
  const auto loss = [&] {
    at::Tensor l = (torch::matmul(x, w.t()) - target).pow(2).mean();
    l.backward();
    return l;
  };
  if (mode == 0) {
    torch::optim::AdamW optimizer({w}, 1e-4);
    for (auto _ : state) {
      optimizer.zero_grad();
      benchmark::DoNotOptimize(loss());
      optimizer.step();
    }
    return;
  }
  adze::CompressorOptions options;
  options.train_factors = mode == 1;
  adze::Compressor compressor({{layer, config, w, {}}}, options);
  std::vector<at::Tensor> params = compressor.factor_parameters();
  params.push_back(w);
  torch::optim::AdamW optimizer(params, 1e-4);
  for (auto _ : state) benchmark::DoNotOptimize(compressor.step(loss, optimizer));
}
BENCHMARK_CAPTURE(decomposed_step, plain, 0)
    ->Name("linear_1024x1024_step/plain")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
BENCHMARK_CAPTURE(decomposed_step, factors, 1)
    ->Name("linear_1024x1024_step/rank128_int8_factors")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
BENCHMARK_CAPTURE(decomposed_step, projection, 2)
    ->Name("linear_1024x1024_step/rank128_int8_projection")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// The same layer as a traced model, as finetune.ste runs it: plain, or with INT8 factors (rank 128, or Monarch
// with 4 blocks) with the graph computing through the factors (compress/factored_graph.h), each factor trained
// as a weight of its own.
void traced_step(benchmark::State& state, adze::Decomposition decompose) {
  at::set_num_threads(1);
  torch::manual_seed(0);
  torch::nn::Linear net(1024, 1024);
  adze::Model model = adze::trace_module(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, {{64, 1024}, "float32"}, "linear");
  const at::Tensor x = torch::randn({64, 1024}), target = torch::randn({64, 1024});
  const auto loss = [&] {
    at::Tensor l = (model.forward(x) - target).pow(2).mean();
    l.backward();
    return l;
  };
  const adze::LayerTable table = adze::build_layer_table(model);
  const adze::Layer& layer = table.layers.at(0);
  adze::LayerConfig config;
  config.weight_bits = 8;
  config.decompose = decompose;
  config.rank = 128;
  config.blocks = 4;
  const bool factored = decompose != adze::Decomposition::kNone;
  adze::FactoredGraph graph(model);
  std::vector<adze::CompressedWeight> weights;
  if (factored && !graph.can_rewrite(layer, config)) {
    state.SkipWithError(("cannot rewrite layer '" + layer.name + "' (weight '" + layer.weight + "', uses " +
                         std::to_string(layer.uses) + ", reduction dim " + std::to_string(layer.reduction_dim) + ")")
                            .c_str());
    return;
  }
  if (factored) {
    const at::Tensor w = model.tensors()[static_cast<std::size_t>(model.find_tensor(layer.weight))].value;
    const std::vector<at::Tensor> factors = graph.rewrite(layer, adze::project(w, layer, config));
    const std::vector<adze::FactorSpec> specs = adze::factor_specs(layer, config);
    for (std::size_t i = 0; i < specs.size(); ++i) weights.push_back({specs[i].layer, specs[i].config, factors[i], {}});
  }
  std::vector<at::Tensor> params = model.parameters();
  for (auto& p : params) p.requires_grad_(true);
  adze::Compressor compressor(std::move(weights));
  torch::optim::AdamW optimizer(params, 1e-4);
  for (auto _ : state) benchmark::DoNotOptimize(compressor.step(loss, optimizer));
}
BENCHMARK_CAPTURE(traced_step, plain, adze::Decomposition::kNone)
    ->Name("traced_linear_1024x1024_step/plain")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
BENCHMARK_CAPTURE(traced_step, factored, adze::Decomposition::kLowRank)
    ->Name("traced_linear_1024x1024_step/rank128_int8_through_factors")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
BENCHMARK_CAPTURE(traced_step, monarch, adze::Decomposition::kMonarch)
    ->Name("traced_linear_1024x1024_step/monarch4_int8_through_factors")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
