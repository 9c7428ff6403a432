// Fuzzes the IDX reader (data/idx.h), the format of MNIST and Fashion-MNIST files, gzipped or not.
#include <ATen/core/Tensor.h>

#include "data/idx.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = adze::fuzz::write_input(data, size, "images-idx3-ubyte");
  adze::fuzz::expect_adze_errors_only([&] { adze::read_idx_file(path).sum(); });
  return 0;
}
