#include "tests/corrupt_model.h"

#include <torch/script.h>
#include <torch/serialize.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace adze::testing {

void write_model_with_nan(const std::string& from, const std::string& parameter, int64_t count, const std::string& to) {
  torch::jit::Module m = torch::jit::load(from);
  for (const auto& p : m.named_parameters(/*recurse=*/true)) {
    if (p.name != parameter) continue;
    torch::NoGradGuard no_grad;
    p.value.view({-1}).slice(0, 0, count).fill_(NAN);
    m.save(to);
    return;
  }
  throw std::runtime_error("write_model_with_nan: '" + from + "' has no parameter '" + parameter + "'");
}

double libtorch_top1(const std::string& model, const std::string& tensors, int64_t begin, int64_t end) {
  torch::jit::Module m = torch::jit::load(model);
  m.eval();
  std::ifstream f(tensors, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const c10::Dict<c10::IValue, c10::IValue> d = torch::pickle_load(bytes).toGenericDict();
  const at::Tensor x = d.at("inputs").toTensor().slice(0, begin, end);
  const at::Tensor y = d.at("targets").toTensor().slice(0, begin, end);
  torch::NoGradGuard no_grad;
  return m.forward({x}).toTensor().argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
}

}  // namespace adze::testing
