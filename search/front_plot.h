// An SVG plot of a search: loss increase (predicted or measured, `loss_axis` says) against cost, the Pareto front as a line, the uniform
// baselines as labelled squares, the budget as a dashed line and the chosen plan circled.
#pragma once

#include <string>
#include <vector>

#include "search/searcher.h"

namespace adze {

std::string front_svg(const std::vector<Point>& front, const std::vector<Point>& baselines, const Point& best,
                      double budget, const std::string& cost_axis, const std::string& loss_axis,
                      const std::string& title);

}  // namespace adze
