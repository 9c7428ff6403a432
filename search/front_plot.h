// SVG plots of a search.
//   front_svg: loss increase (predicted or measured, `loss_axis` says) against cost: the Pareto front as a line,
//     the uniform baselines as labelled squares, the budget as a dashed line and the chosen plan circled.
//   confirmed_svg: test top-1 after the confirmation pipeline against cost: each confirmed plan with the range
//     of its runs (seeds), uniform plans as squares, the search's as circles, the written plan ringed, the
//     budget and the uncompressed model's top-1 as dashed lines.
#pragma once

#include <string>
#include <vector>

#include "search/searcher.h"

namespace adze {

std::string front_svg(const std::vector<Point>& front, const std::vector<Point>& baselines, const Point& best,
                      double budget, const std::string& cost_axis, const std::string& loss_axis,
                      const std::string& title);

struct ConfirmedMark {
  std::string label;
  double cost = 0;
  double top1 = 0, top1_min = 0, top1_max = 0;  ///< mean and range over the plan's runs, fractions
  bool uniform = false;                         ///< a uniform plan (else the search's)
  bool written = false;                         ///< the plan written to plan.json
};

std::string confirmed_svg(const std::vector<ConfirmedMark>& plans, double budget, double fp32_top1,
                          const std::string& cost_axis, const std::string& top1_axis, const std::string& title);

}  // namespace adze
