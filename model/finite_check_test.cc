// Non-finite weights are the user's input at fault: refused when the model is loaded, naming file and tensor.
#include "model/finite_check.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>

#include "model/frontend.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;
using testing::fixture;
using testing::TempDir;

// The transformer fixture with `count` values of one parameter set to `value` (a diverged training run).
std::string save_transformer_with(const TempDir& dir, const std::string& parameter, int64_t count, float value) {
  torch::jit::Module m = torch::jit::load(fixture("transformer_traced.pt"));
  bool found = false;
  for (const auto& p : m.named_parameters(/*recurse=*/true)) {
    if (p.name != parameter) continue;
    torch::NoGradGuard no_grad;
    p.value.view({-1}).slice(0, 0, count).fill_(value);
    found = true;
  }
  EXPECT_TRUE(found) << parameter;
  const std::string path = dir.file("diverged.pt");
  m.save(path);
  return path;
}

const InputSpec kTokens{{1, 16, 32}, "float32"};

TEST(FiniteCheck, LoadRefusesAParameterHoldingNaNNamingFileAndParameter) {
  TempDir dir;
  const std::string path = save_transformer_with(dir, "encoder.layers.0.linear1.weight", 3, NAN);
  expect_error([&] { load_torchscript(path, kTokens); }, ErrorKind::kInvalidArgument,
               {"model '" + path + "'", "parameter 'encoder.layers.0.linear1.weight' holds NaN (3 of 2048 values)"});
}

TEST(FiniteCheck, LoadRefusesInfinityInAParameter) {
  TempDir dir;
  const std::string path = save_transformer_with(dir, "head.bias", 1, -INFINITY);
  expect_error([&] { load_torchscript(path, kTokens); }, ErrorKind::kInvalidArgument,
               {"parameter 'head.bias' holds inf (1 of 10 values)"});
}

TEST(FiniteCheck, TheFixtureItselfLoads) {
  EXPECT_NO_THROW(load_torchscript(fixture("transformer_traced.pt"), kTokens));
}

// A C++ module: a linear layer and an additive mask buffer.
struct Masked : torch::nn::Module {
  torch::nn::Linear fc{nullptr};
  at::Tensor mask;
  Masked() {
    fc = register_module("fc", torch::nn::Linear(4, 3));
    mask = register_buffer("mask", torch::zeros({3}));
  }
  at::Tensor forward(const at::Tensor& x) { return fc->forward(x) + mask; }
};

Model trace(Masked& m) {
  return trace_module(
      m, [&](const at::Tensor& x) { return m.forward(x); }, {{2, 4}, "float32"}, "masked");
}

TEST(FiniteCheck, TraceRefusesNaNInAModuleAndCountsTheOtherTensors) {
  Masked m;
  torch::NoGradGuard no_grad;
  m.fc->weight[1][2] = NAN;
  m.fc->bias[0] = INFINITY;
  m.mask[1] = NAN;
  expect_error([&] { trace(m); }, ErrorKind::kInvalidArgument,
               {"module 'masked'", "parameter 'fc.weight' holds NaN (1 of 12 values)", "and 2 other tensors"});
}

TEST(FiniteCheck, AnInfiniteBufferIsAMaskNotAnError) {
  Masked m;
  torch::NoGradGuard no_grad;
  m.mask[2] = -INFINITY;
  EXPECT_NO_THROW(trace(m));
}

}  // namespace
}  // namespace adze
