// Fuzzes the pipeline parser (compress/pass.h: load_pipeline): steps, pass names and their options.
#include "compress/pass.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = adze::fuzz::write_input(data, size, "pipeline.json");
  adze::fuzz::expect_adze_errors_only([&] { adze::load_pipeline(path); });
  return 0;
}
