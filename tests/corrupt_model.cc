#include "tests/corrupt_model.h"

#include <torch/script.h>

#include <cmath>
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

}  // namespace adze::testing
