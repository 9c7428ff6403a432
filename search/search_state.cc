#include "search/search_state.h"

#include <algorithm>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "core/files.h"

namespace adze {

std::string search_state_path(const std::string& dir) { return dir + "/search-state.json"; }

nlohmann::json to_json(const SearchState& s) {
  nlohmann::json measured = nlohmann::json::array();
  for (const auto& [choice, loss] : s.measured) measured.push_back({{"choice", choice}, {"loss", loss}});
  return {
      {"format", "adze.search-state.v1"}, {"identity", s.identity}, {"measured", measured}, {"confirmed", s.confirmed}};
}

SearchState resume_search_state(const std::string& dir, const nlohmann::json& identity) {
  const std::string path = search_state_path(dir);
  if (!std::filesystem::is_directory(dir))
    throw Error(ErrorKind::kInvalidArgument, "--resume " + dir + ": no such directory");
  if (!std::filesystem::exists(path))
    throw Error(ErrorKind::kInvalidArgument, "--resume " + dir + ": not a search directory (no search-state.json)");
  SearchState s;
  try {
    const nlohmann::json j = nlohmann::json::parse(read_file_text(path));
    if (j.at("format") != "adze.search-state.v1") throw Error(ErrorKind::kInvalidConfig, "unknown format");
    s.identity = j.at("identity");
    for (const auto& m : j.at("measured")) {
      const nlohmann::json& choice = m.at("choice");
      // Checked before conversion: a number out of int's range is undefined behaviour there (found by fuzzing).
      if (!choice.is_array() || !std::all_of(choice.begin(), choice.end(), [](const nlohmann::json& o) {
            return o.is_number_integer() && o.get<int64_t>() >= 0 &&
                   o.get<int64_t>() <= std::numeric_limits<int>::max();
          }))
        throw Error(ErrorKind::kInvalidConfig, "a measured 'choice' is not a list of option indices");
      s.measured[choice.get<Choice>()] = m.at("loss").get<double>();
    }
    s.confirmed = j.at("confirmed");
    if (!s.confirmed.is_array()) throw Error(ErrorKind::kInvalidConfig, "'confirmed' is not a list");
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kInvalidArgument, "--resume " + dir + ": " + path + " is malformed: " + first_line_of(e));
  }
  for (const auto& [field, want] : identity.items()) {
    const auto it = s.identity.find(field);
    if (it == s.identity.end() || *it != want)
      throw Error(ErrorKind::kInvalidArgument,
                  "--resume " + dir + ": it was searched with " + field + " " +
                      (it == s.identity.end() ? std::string("unknown") : it->dump()) + ", not " + want.dump() +
                      " (resume with the same model, data, space, target, budget, algorithm and seed, or search "
                      "into a new --out)");
  }
  return s;
}

}  // namespace adze
