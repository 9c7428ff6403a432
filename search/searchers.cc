// The searchers over a Problem (searcher.h): greedy and dynamic programming.
#include <algorithm>
#include <cmath>
#include <limits>

#include "search/searcher.h"

namespace adze {

namespace {

// Start from the most compressed legal config of every layer and relax, one layer at a time, the move that buys
// the most predicted loss per unit of cost while the budget holds (the heuristic of NxMiFormer, with the
// sensitivity table as the accuracy proxy). Every step is a point of the front.
class Greedy : public Searcher {
 public:
  SearchResult run(const Problem& p, const SearchOptions&) const override {
    p.check();
    Choice c = p.cheapest();
    std::vector<Point> path = {Point{c, p.total_loss(c), p.total_cost(c), "greedy"}};
    int64_t evaluated = 1;
    double cost = p.total_cost(c);
    for (;;) {
      double best_ratio = 0;
      std::size_t best_layer = 0;
      int best_option = -1;
      for (std::size_t l = 0; l < p.layers.size(); ++l)
        for (std::size_t o = 0; o < p.configs[l].size(); ++o) {
          const double gain = p.loss[l][static_cast<std::size_t>(c[l])] - p.loss[l][o];
          const double extra = p.cost[l][o] - p.cost[l][static_cast<std::size_t>(c[l])];
          ++evaluated;
          if (gain <= 0 || cost + extra > p.budget) continue;
          const double ratio = extra <= 0 ? std::numeric_limits<double>::infinity() : gain / extra;
          if (ratio > best_ratio) {
            best_ratio = ratio;
            best_layer = l;
            best_option = static_cast<int>(o);
          }
        }
      if (best_option < 0) break;
      cost += p.cost[best_layer][static_cast<std::size_t>(best_option)] -
              p.cost[best_layer][static_cast<std::size_t>(c[best_layer])];
      c[best_layer] = best_option;
      path.push_back(Point{c, p.total_loss(c), p.total_cost(c), "greedy"});
    }
    return result_of(p, path, evaluated);
  }
};

// The multiple-choice knapsack over the sensitivity table (as HAWQ-V3 solves with an integer program): costs
// rounded up onto a grid of `buckets` steps spanning every reachable total, so that each grid cell is a true
// upper bound; the least loss per cell gives the whole front, and the best choice within the budget.
class DynamicProgramming : public Searcher {
 public:
  explicit DynamicProgramming(int64_t buckets) : buckets_(buckets) {}
  SearchResult run(const Problem& p, const SearchOptions&) const override {
    p.check();
    double span = 0;
    for (const auto& costs : p.cost) span += *std::max_element(costs.begin(), costs.end());
    const double step = std::max(span, 1e-30) / static_cast<double>(buckets_);
    const auto n = static_cast<std::size_t>(buckets_) + p.layers.size() + 1;
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> best(n, inf), next(n);
    best[0] = 0;
    std::vector<std::vector<int>> pick(p.layers.size(), std::vector<int>(n, -1));
    int64_t evaluated = 0;
    for (std::size_t l = 0; l < p.layers.size(); ++l) {
      std::fill(next.begin(), next.end(), inf);
      for (std::size_t b = 0; b < n; ++b) {
        if (best[b] == inf) continue;
        for (std::size_t o = 0; o < p.configs[l].size(); ++o) {
          const auto to = b + static_cast<std::size_t>(std::ceil(p.cost[l][o] / step));
          ++evaluated;
          if (to >= n) continue;
          const double v = best[b] + p.loss[l][o];
          if (v < next[to]) {
            next[to] = v;
            pick[l][to] = static_cast<int>(o);
          }
        }
      }
      std::swap(best, next);
    }
    // Backtrack every reachable cell; keep the cells that improve on all cheaper ones (the front).
    std::vector<Point> points;
    double least = inf;
    for (std::size_t b = 0; b < n; ++b) {
      if (!(best[b] < least)) continue;
      least = best[b];
      Choice c(p.layers.size());
      std::size_t at = b;
      for (std::size_t l = p.layers.size(); l-- > 0;) {
        c[l] = pick[l][at];
        at -= static_cast<std::size_t>(std::ceil(p.cost[l][static_cast<std::size_t>(c[l])] / step));
      }
      points.push_back(Point{c, p.total_loss(c), p.total_cost(c), "dp"});
    }
    return result_of(p, points, evaluated);
  }

 private:
  int64_t buckets_;
};

}  // namespace

Registry<Searcher>::Entry greedy_entry() {
  return {"greedy",
          "start from the most compressed legal config; relax the layer that buys the most predicted loss per unit of "
          "cost while the budget holds",
          {},
          [](const nlohmann::json&) { return std::make_unique<Greedy>(); }};
}

Registry<Searcher>::Entry dp_entry() {
  struct Options {
    int64_t buckets = 4000;
  };
  return Registry<Searcher>::entry(
      "dp",
      "multiple-choice knapsack by dynamic programming over the sensitivity table (HAWQ-V3's problem); exact up to "
      "the cost grid",
      OptionList<Options>().add(&Options::buckets, "buckets", "steps of the cost grid", between(1, 1e8)),
      [](const Options& o) { return std::make_unique<DynamicProgramming>(o.buckets); });
}

}  // namespace adze
