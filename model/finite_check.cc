#include "model/finite_check.h"

#include <torch/torch.h>

#include <string>

#include "core/error.h"
#include "model/model.h"

namespace adze {
namespace {

// "holds NaN (3 of 2048 values)", or "" when the tensor is acceptable.
std::string describe_non_finite(const NamedTensor& t) {
  if (!t.value.defined() || !t.value.is_floating_point()) return "";
  torch::NoGradGuard no_grad;
  const int64_t nan = torch::isnan(t.value).sum().item<int64_t>();
  const int64_t inf = t.is_parameter ? torch::isinf(t.value).sum().item<int64_t>() : 0;
  if (nan == 0 && inf == 0) return "";
  const std::string what = nan > 0 && inf > 0 ? "NaN and inf" : nan > 0 ? "NaN" : "inf";
  return "holds " + what + " (" + std::to_string(nan + inf) + " of " + std::to_string(t.value.numel()) + " values)";
}

// "model 'x.pt'", or "module 'net'" for a C++ module (source "module:net").
std::string describe_source(const std::string& source) {
  const std::string prefix = "module:";
  if (source.compare(0, prefix.size(), prefix) == 0) return "module '" + source.substr(prefix.size()) + "'";
  return "model '" + source + "'";
}

}  // namespace

void require_finite_tensors(const Model& model) {
  std::string first;
  int others = 0;
  for (const NamedTensor& t : model.tensors()) {
    const std::string problem = describe_non_finite(t);
    if (problem.empty()) continue;
    if (first.empty())
      first = std::string(t.is_parameter ? "parameter '" : "buffer '") + t.name + "' " + problem;
    else
      ++others;
  }
  if (first.empty()) return;
  throw Error(
      ErrorKind::kInvalidArgument,
      "failed to load " + describe_source(model.source()) + ": " + first +
          (others > 0 ? " (and " + std::to_string(others) + " other tensor" + (others > 1 ? "s" : "") + ")" : "") +
          "; a model's weights must be finite");
}

}  // namespace adze
