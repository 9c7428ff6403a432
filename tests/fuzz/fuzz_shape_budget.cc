// Fuzzes what users type on the command line: --input-shape (core/shape.h), --budget and --time-budget
// (search/budget.h).
#include "core/shape.h"
#include "search/budget.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  adze::fuzz::expect_adze_errors_only([&] {
    const adze::Shape shape = adze::parse_shape(text);
    if (adze::shape_numel(shape) > adze::kMaxShapeElements) std::abort();  // the limit parse_shape promises
  });
  adze::fuzz::expect_adze_errors_only([&] {
    const adze::Budget b = adze::parse_budget(text);
    if (!(b.value > 0)) std::abort();  // a budget is positive
    b.to_string();
  });
  adze::fuzz::expect_adze_errors_only([&] {
    if (!(adze::parse_duration(text, "--time-budget") > 0)) std::abort();
  });
  return 0;
}
