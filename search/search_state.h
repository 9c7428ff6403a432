// What a search directory keeps so that `adze search --resume DIR` loses nothing: what the search was run on
// (its identity: the sensitivity key, which hashes the model, data and space, plus target, budget, algorithm and
// seed) and every choice measured so far with its loss. A resumed search replays its deterministic path with the
// measured choices answered from the state, then goes on.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "search/searcher.h"

namespace adze {

struct SearchState {
  nlohmann::json identity;                             ///< an object of strings and numbers
  std::map<Choice, double> measured;                   ///< choice → measured loss increase
  nlohmann::json confirmed = nlohmann::json::array();  ///< confirmation runs done (adze search's records)
};

nlohmann::json to_json(const SearchState& state);

/// Reads DIR's state file. Error(kInvalidArgument) naming the directory when there is none or it is
/// malformed, and naming the first field whose value differs from `identity` ("it was searched with target
/// 'a100', not 'cortex-m7'").
SearchState resume_search_state(const std::string& dir, const nlohmann::json& identity);

/// The state file of a search directory.
std::string search_state_path(const std::string& dir);

}  // namespace adze
