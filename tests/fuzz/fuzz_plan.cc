// Fuzzes the plan parser (compress/plan.h: load_plan), which every compress, cost and sweep reads.
#include "compress/plan.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = adze::fuzz::write_input(data, size, "plan.json");
  adze::fuzz::expect_adze_errors_only([&] { adze::load_plan(path); });
  return 0;
}
