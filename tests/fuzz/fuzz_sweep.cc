// Fuzzes the sweep file parser (sweep/sweep_file.h) as JSON and as YAML (the first byte chooses), and the
// expansion of what parses into runs. Nothing named in the file is loaded: that is sweep_runs.h's part.
#include "sweep/sweep_file.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool yaml = data[0] & 1;
  const std::string path = adze::fuzz::write_input(data + 1, size - 1, yaml ? "sweep.yaml" : "sweep.json");
  adze::fuzz::expect_adze_errors_only([&] {
    const adze::SweepFile sweep = adze::load_sweep_file(path);
    sweep.canonical();
    // A grid of many long lists expands to their product: bounded here, as a real sweep is by its author.
    double runs = 1;
    for (const auto& [axis, values] : sweep.grid.items()) runs *= static_cast<double>(values.size());
    for (const auto& group : sweep.zip) runs *= static_cast<double>(group.begin()->size());
    if (runs <= 4096)
      for (const adze::SweepRun& run : adze::expand_sweep(sweep)) adze::describe_axes(run.axes);
  });
  return 0;
}
