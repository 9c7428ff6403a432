// Fuzzes the safetensors reader under the packed format (runtime/safetensors.h): the header length, the JSON
// header, dtypes, shapes and offsets, every one checked in open() against the file's size.
#include "runtime/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = adze::fuzz::write_input(data, size, "model.safetensors");
  adze::fuzz::expect_adze_errors_only([&] {
    const auto file = adze::packed::SafetensorsFile::open(path);
    uint64_t sum = 0;  // touch every byte each tensor claims: a span past the mapping crashes here
    for (const auto& [name, span] : file->tensors())
      for (int64_t i = 0; i < span.bytes; ++i) sum += span.data[i];
    if (sum == 1) std::fputc(' ', stderr);
  });
  return 0;
}
