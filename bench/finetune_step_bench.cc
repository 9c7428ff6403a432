// Cost of one fine-tuning step with STE and fake-quant against a plain training step of the same model, side
// by side: fmnist-cnn (random weights, traced at batch 128), AdamW, one thread.
//
//   build/bench/finetune_step_bench
//
// Plain: forward, cross-entropy, backward, optimizer step. STE: the same through Compressor::step with the
// plan 2:4 + INT4 per-channel weights (first conv INT8) and INT8 activation fake-quant on every layer input,
// so each step also projects every weight (N:M mask, scales, codes) and gates the gradient. The bar: STE
// ≤ 1.5× plain. Weight scales: min-max or MSE (chosen afresh every step), or learned (LSQ: kept, and trained
// from their own gradient).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "compress/activation_quant.h"
#include "compress/compressor.h"
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

}  // namespace

BENCHMARK_MAIN();
