// Test inputs made on the fly rather than committed (a TorchScript fixture with some weights spoiled, as a
// diverged training run leaves them) and expected values computed in plain libtorch. Kept out of cli_test.cc so that
// the CLI tests compile without libtorch.
#pragma once

#include <cstdint>
#include <string>

namespace adze::testing {

/// Loads the TorchScript file `from`, sets the first `count` values of `parameter` to NaN and saves it to `to`.
/// Throws std::runtime_error when the model has no such parameter.
void write_model_with_nan(const std::string& from, const std::string& parameter, int64_t count, const std::string& to);

/// What a CLI command should report, computed in plain libtorch: the top-1 of the TorchScript model `model` on
/// samples [begin, end) of the tensors file `tensors` ({"inputs", "targets"}, saved by torch.save).
double libtorch_top1(const std::string& model, const std::string& tensors, int64_t begin, int64_t end);

}  // namespace adze::testing
