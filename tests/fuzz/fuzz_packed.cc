// Fuzzes the packed file reader (runtime/packed_model.h): open (every check, the schedule), the encodings read
// back, and one forward pass on a small input of the recorded shape.
#include <ATen/ATen.h>

#include "runtime/packed_model.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = adze::fuzz::write_input(data, size, "model.adze");
  adze::fuzz::expect_adze_errors_only([&] {
    const adze::packed::PackedModel m = adze::packed::PackedModel::open(path);
    m.encodings();
    const adze::InputSpec& input = m.input();
    double elements = 1;
    for (int64_t d : input.shape) elements *= static_cast<double>(d);
    if (elements > (1 << 16)) return;  // a shape the seeds' tiny models never record
    const at::Tensor x = input.dtype == "int64" ? at::zeros(input.shape, at::kLong) : at::ones(input.shape);
    m.forward(x).sum();
  });
  return 0;
}
