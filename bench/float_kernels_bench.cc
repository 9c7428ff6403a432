// The runtime's float kernels (runtime/kernels/float_kernels.h) against ATen's operators on the same shapes, at
// batch 1 in the reference models (examples/reference/models.cc): fmnist-vit (17 tokens of width 64, 4 heads
// of 16, MLP 128) and fortune-gpt (64 tokens of width 128, 4 heads of 32, MLP 512). Ours on the active
// instruction set (active_isa(); ADZE_ISA=avx2 or scalar forces a lower one; the label says which)
// write into a buffer made once; ATen's functional operators allocate their result, as the runtime's calls to
// them do. The attention products take every head in one call: at::matmul on the heads' views of the qkv
// projection (k transposed), ours one matmul per head on the same strided views. One thread for both.
//
//   build/bench/float_kernels_bench
//   ADZE_ISA=avx2 build/bench/float_kernels_bench --benchmark_filter=gpt
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/isa.h"
#include "runtime/kernels/float_kernels.h"

namespace {

using adze::runtime::FloatKernels;

// The tensors the benchmarks read and write, alive for the whole run; ours take their data pointers once.
std::vector<at::Tensor>& tensors() {
  static std::vector<at::Tensor> all;
  return all;
}
float* data(const at::Tensor& t) {
  tensors().push_back(t);
  return t.data_ptr<float>();
}

// Registers name/adze (ours) and name/aten, each a callable run once per iteration.
template <class Ours, class Aten>
void add_pair(const std::string& name, Ours ours, Aten aten) {
  auto run_ours = [ours](benchmark::State& state) {
    for (auto _ : state) {
      ours();
      benchmark::ClobberMemory();
    }
    state.SetLabel(adze::to_string(adze::active_isa()));
  };
  auto run_aten = [aten](benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(aten());
    state.SetLabel("aten");
  };
  benchmark::RegisterBenchmark((name + "/adze").c_str(), run_ours)->Unit(benchmark::kMicrosecond)->UseRealTime();
  benchmark::RegisterBenchmark((name + "/aten").c_str(), run_aten)->Unit(benchmark::kMicrosecond)->UseRealTime();
}

struct Model {
  const char* name;
  int64_t tokens, dim, heads, mlp;
};

const Model kModels[] = {{"vit", 17, 64, 4, 128}, {"gpt", 64, 128, 4, 512}};

void add_model(const Model& m) {
  const FloatKernels& ker = adze::runtime::float_kernels(adze::active_isa());
  const std::string prefix = std::string(m.name) + "/";
  const int64_t t = m.tokens, dim = m.dim, mlp = m.mlp, heads = m.heads, hd = m.dim / m.heads;
  auto shape = [](int64_t a, int64_t b) { return std::to_string(a) + "x" + std::to_string(b); };

  const at::Tensor x = at::randn({t, dim}), x2 = at::randn({t, dim}), gamma = at::randn({dim}), beta = at::randn({dim});
  float *px = data(x), *px2 = data(x2), *pg = data(gamma), *pb = data(beta), *py = data(at::empty({t, dim}));
  add_pair(
      prefix + "layer_norm_" + shape(t, dim), [=, &ker] { ker.layer_norm(px, py, t, dim, pg, pb, 1e-5f); },
      [=] { return at::layer_norm(x, {dim}, gamma, beta, 1e-5); });
  add_pair(
      prefix + "add_" + shape(t, dim), [=, &ker] { ker.add(px, px2, 1.0f, py, t * dim); },
      [=] { return at::add(x, x2); });

  const at::Tensor h = at::randn({t, mlp});
  float *ph = data(h), *phy = data(at::empty({t, mlp}));
  add_pair(
      prefix + "gelu_" + shape(t, mlp), [=, &ker] { ker.gelu(ph, phy, t * mlp); }, [=] { return at::gelu(h); });
  add_pair(
      prefix + "gelu_tanh_" + shape(t, mlp), [=, &ker] { ker.gelu_tanh(ph, phy, t * mlp); },
      [=] { return at::gelu(h, "tanh"); });
  add_pair(
      prefix + "clamp_" + shape(t, mlp), [=, &ker] { ker.clamp(ph, phy, t * mlp, 0.0f, 6.0f); },
      [=] { return at::clamp(h, 0, 6); });

  // Attention: q, k, v as the heads' views of the qkv projection [t, 3, heads, hd]: per head, q's rows and k's
  // (the columns of B = kᵀ) are 3·dim apart, as are v's rows; scores [heads, t, t] contiguous.
  const at::Tensor qkv = at::randn({t, 3, heads, hd}).permute({1, 2, 0, 3});  // [3, heads, t, hd]
  const at::Tensor q = qkv[0], k = qkv[1], v = qkv[2], scores = at::softmax(at::randn({heads, t, t}), -1);
  float *pq = data(q), *pk = data(k), *pv = data(v), *ps = data(scores), *pout = data(at::empty({heads, t, t}));
  float* pattended = data(at::empty({heads, t, hd}));
  const int64_t row = 3 * dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const std::string heads_t_t = std::to_string(heads) + "x" + shape(t, t);
  add_pair(
      prefix + "softmax_" + heads_t_t, [=, &ker] { ker.softmax(ps, pout, heads * t, t); },
      [=] { return at::softmax(scores, -1); });
  add_pair(
      prefix + "matmul_qkT_" + heads_t_t,
      [=, &ker] {
        for (int64_t i = 0; i < heads; ++i)
          ker.matmul(pq + i * hd, row, 1, pk + i * hd, 1, row, pout + i * t * t, t, t, t, hd, scale);
      },
      [=] { return at::matmul(q, k.transpose(-2, -1)); });
  add_pair(
      prefix + "matmul_av_" + std::to_string(heads) + "x" + shape(t, hd),
      [=, &ker] {
        for (int64_t i = 0; i < heads; ++i)
          ker.matmul(ps + i * t * t, t, 1, pv + i * hd, row, 1, pattended + i * t * hd, hd, t, hd, t, 1.0f);
      },
      [=] { return at::matmul(scores, v); });
}

const bool kRegistered = [] {
  at::set_num_threads(1);
  for (const Model& m : kModels) add_model(m);
  return true;
}();

}  // namespace
