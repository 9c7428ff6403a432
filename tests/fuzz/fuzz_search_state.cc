// Fuzzes the search state a search resumes from (search/search_state.h: DIR/search-state.json).
#include <filesystem>
#include <nlohmann/json.hpp>

#include "search/confirm.h"
#include "search/search_state.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = adze::fuzz::scratch_dir() + "/search";
  std::filesystem::create_directories(dir);
  const std::string path = adze::search_state_path(dir);
  const std::string name = path.substr(dir.size() + 1);
  adze::fuzz::write_input(data, size, "search/" + name);
  adze::fuzz::expect_adze_errors_only([&] {
    // No identity to match: every record is read, as a resume that matches reads them, then the confirmations.
    const adze::SearchState state = adze::resume_search_state(dir, nlohmann::json::object());
    adze::confirm_records_from_json(state.confirmed, "fuzz");
  });
  return 0;
}
