#include "search/searcher.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

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

SearchResult result_of(const Problem& p, std::vector<Point> points, int64_t evaluated) {
  SearchResult r;
  r.evaluated = evaluated;
  const Choice cheapest = p.cheapest();
  if (std::none_of(points.begin(), points.end(), [&](const Point& pt) { return pt.choice == cheapest; }))
    points.push_back(Point{cheapest, p.total_loss(cheapest), p.total_cost(cheapest), "cheapest"});
  r.front = pareto_front(points);
  r.satisfiable = p.total_cost(cheapest) <= p.budget;
  if (!r.satisfiable) {
    r.best = r.front.front();
    return r;
  }
  for (const auto& pt : r.front)
    if (pt.cost <= p.budget) r.best = pt;  // the front is cost ascending, loss descending: the last that fits
  return r;
}

Choice within_budget(const Problem& p, Choice c, int held) {
  double cost = p.total_cost(c);
  while (cost > p.budget) {
    double best_ratio = std::numeric_limits<double>::infinity();
    std::size_t layer = 0;
    int option = -1;
    for (std::size_t l = 0; l < c.size(); ++l) {
      if (static_cast<int>(l) == held) continue;
      const auto now = static_cast<std::size_t>(c[l]);
      int next = -1;  // the dearest option cheaper than the current one
      for (std::size_t o = 0; o < p.cost[l].size(); ++o)
        if (p.cost[l][o] < p.cost[l][now] && (next < 0 || p.cost[l][o] > p.cost[l][static_cast<std::size_t>(next)]))
          next = static_cast<int>(o);
      if (next < 0) continue;
      const auto n = static_cast<std::size_t>(next);
      const double ratio = std::max(0.0, p.loss[l][n] - p.loss[l][now]) / (p.cost[l][now] - p.cost[l][n]);
      if (ratio < best_ratio) {
        best_ratio = ratio;
        layer = l;
        option = next;
      }
    }
    if (option < 0) break;  // the cheapest choice
    cost += p.cost[layer][static_cast<std::size_t>(option)] - p.cost[layer][static_cast<std::size_t>(c[layer])];
    c[layer] = option;
  }
  return c;
}

std::vector<Point> alternatives(const Problem& p, const Choice& best, const std::vector<Point>& front,
                                std::size_t count, const std::function<double(const Choice&)>& loss) {
  std::set<Choice> seen{best};
  std::vector<Point> found;
  auto consider = [&](const Choice& c) {
    const double cost = p.total_cost(c);
    if (cost > p.budget || !seen.insert(c).second) return;
    found.push_back(Point{c, loss ? loss(c) : p.total_loss(c), cost, ""});
  };
  for (const auto& pt : front) consider(pt.choice);
  for (std::size_t l = 0; l < best.size(); ++l)
    for (std::size_t o = 0; o < p.configs[l].size(); ++o) {
      if (static_cast<int>(o) == best[l]) continue;
      Choice c = best;
      c[l] = static_cast<int>(o);
      consider(within_budget(p, c, static_cast<int>(l)));
    }
  std::stable_sort(found.begin(), found.end(), [](const Point& a, const Point& b) { return a.loss < b.loss; });
  if (found.size() > count) found.resize(count);
  for (std::size_t i = 0; i < found.size(); ++i) found[i].label = "alternative " + std::to_string(i + 1);
  return found;
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
