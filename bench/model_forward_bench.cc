// A model's forward without autograd (evaluation, calibration, the teacher of distillation) as adze runs it,
// against the graph as traced run by libtorch's interpreter, side by side: fmnist-cnn (random weights, traced at
// batch 64), batch 64, one thread. The difference is model/faster_graph.h's rewrite: the two max pools run on a
// channels-last copy of their input.
//
//   build/bench/model_forward_bench
#include <benchmark/benchmark.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/torch.h>

#include "examples/reference/models.h"
#include "model/frontend.h"

namespace {

constexpr int64_t kBatch = 64;

adze::Model traced_cnn() {
  torch::manual_seed(0);
  adze::reference::FmnistCnn net;
  net->eval();
  return adze::trace_module(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, {{kBatch, 1, 28, 28}, "float32"}, "fmnist-cnn");
}

void BM_FmnistCnnForward_AsTraced(benchmark::State& state) {
  at::set_num_threads(1);
  adze::Model model = traced_cnn();
  torch::NoGradGuard no_grad;
  torch::jit::Code code(model.graph().copy(), "as_traced");
  const at::Tensor x = torch::randn({kBatch, 1, 28, 28});
  for (auto _ : state) {
    torch::jit::Stack stack{x};
    for (std::size_t i = 1; i < model.graph().inputs().size(); ++i)
      stack.emplace_back(model.tensor_of(model.graph().inputs()[i])->value);
    torch::jit::InterpreterState(code).run(stack);
    benchmark::DoNotOptimize(stack);
  }
}
BENCHMARK(BM_FmnistCnnForward_AsTraced)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_FmnistCnnForward_Model(benchmark::State& state) {
  at::set_num_threads(1);
  adze::Model model = traced_cnn();
  torch::NoGradGuard no_grad;
  const at::Tensor x = torch::randn({kBatch, 1, 28, 28});
  for (auto _ : state) benchmark::DoNotOptimize(model.forward(x));
}
BENCHMARK(BM_FmnistCnnForward_Model)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
