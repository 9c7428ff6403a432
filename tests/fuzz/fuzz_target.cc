// Fuzzes the hardware target parser (hardware/target.h: load_target on a file).
#include "hardware/target.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = adze::fuzz::write_input(data, size, "target.json");
  adze::fuzz::expect_adze_errors_only([&] { adze::load_target(path); });
  return 0;
}
