#include "search/searcher.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "search/search_space.h"

namespace adze {

double Problem::total_cost(const Choice& c) const {
  double s = fixed_cost;
  for (std::size_t l = 0; l < c.size(); ++l) s += cost[l][static_cast<std::size_t>(c[l])];
  return s;
}

double Problem::total_loss(const Choice& c) const {
  double s = 0;
  for (std::size_t l = 0; l < c.size(); ++l) s += loss[l][static_cast<std::size_t>(c[l])];
  return s;
}

Choice Problem::cheapest() const {
  Choice c(layers.size());
  for (std::size_t l = 0; l < layers.size(); ++l)
    c[l] = static_cast<int>(std::min_element(cost[l].begin(), cost[l].end()) - cost[l].begin());
  return c;
}

void Problem::check() const {
  const std::size_t n = layers.size();
  if (configs.size() != n || loss.size() != n || cost.size() != n)
    throw Error(ErrorKind::kInternal, "search problem: tables of different lengths");
  for (std::size_t l = 0; l < n; ++l) {
    if (configs[l].empty() || loss[l].size() != configs[l].size() || cost[l].size() != configs[l].size())
      throw Error(ErrorKind::kInternal, "search problem: layer '" + layers[l] + "' has mismatched options");
    for (std::size_t o = 0; o < configs[l].size(); ++o)
      if (!std::isfinite(loss[l][o]) || !std::isfinite(cost[l][o]) || cost[l][o] < 0)
        throw Error(ErrorKind::kInternal, "search problem: layer '" + layers[l] + "' option " + std::to_string(o) +
                                              " has a non-finite loss or cost");
  }
}

std::vector<Point> pareto_front(std::vector<Point> points) {
  std::stable_sort(points.begin(), points.end(),
                   [](const Point& a, const Point& b) { return a.cost != b.cost ? a.cost < b.cost : a.loss < b.loss; });
  std::vector<Point> front;
  for (auto& p : points)
    if (front.empty() || p.loss < front.back().loss) front.push_back(std::move(p));
  return front;
}

std::vector<Point> uniform_baselines(const Problem& p) {
  std::vector<LayerConfig> kinds;  // one representative config per label, in first-seen order
  for (const auto& layer : p.configs)
    for (const auto& c : layer)
      if (std::none_of(kinds.begin(), kinds.end(),
                       [&](const LayerConfig& k) { return config_label(k) == config_label(c); }))
        kinds.push_back(c);
  std::vector<Point> out;
  for (const LayerConfig& kind : kinds) {
    LayerConfig dense = kind;
    dense.nm = NMPattern{};
    Choice choice(p.layers.size(), -1);
    for (std::size_t l = 0; l < p.layers.size(); ++l) {
      const auto& options = p.configs[l];
      auto find = [&](const LayerConfig& want) {
        for (std::size_t o = 0; o < options.size(); ++o)
          if (options[o] == want) return static_cast<int>(o);
        return -1;
      };
      choice[l] = find(kind);
      // The same bits, dense: what "uniform" means for a layer that cannot take the pattern.
      if (choice[l] < 0) choice[l] = find(dense);
    }
    if (std::find(choice.begin(), choice.end(), -1) != choice.end()) continue;
    out.push_back(Point{choice, p.total_loss(choice), p.total_cost(choice), "uniform " + config_label(kind)});
  }
  return out;
}

}  // namespace adze
