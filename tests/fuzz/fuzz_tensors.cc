// Fuzzes the tensors data reader (data/dataset.h, "tensors:FILE"): a torch.save'd dict of inputs and targets.
#include <ATen/core/Tensor.h>

#include "data/dataset.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = adze::fuzz::write_input(data, size, "data.pt");
  adze::fuzz::expect_adze_errors_only([&] {
    adze::DataOptions o;
    o.split = "test";
    const adze::Dataset d = adze::load_dataset("tensors:" + path, o);
    d.inputs.sum();
    d.targets.sum();
  });
  return 0;
}
