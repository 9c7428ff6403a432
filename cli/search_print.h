// adze search's human output: the best plan layer by layer, the uniform baselines and the confirmed plans.
#pragma once

#include "search/search_run.h"

namespace adze::cli {

void print_search_run(const SearchRunOptions& options, const SearchRun& run);

}  // namespace adze::cli
