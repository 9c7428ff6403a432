// evo: NSGA-II (Deb et al., 2002) over whole choices, two objectives (loss, cost) with the budget as a
// constraint (Deb's constrained domination: a choice within the budget beats one over it; of two over it, the
// smaller excess wins). Offspring are moved within the budget (within_budget) so that the search spends its
// measurements where plans are legal; every measured point joins the returned front.
#include <algorithm>
#include <limits>
#include <numeric>
#include <random>

#include "search/scoring.h"
#include "search/searcher.h"

namespace adze {

namespace {

struct Individual {
  Choice choice;
  double loss = 0, cost = 0, excess = 0;
  int rank = 0;
  double crowding = 0;
};

bool dominates(const Individual& a, const Individual& b) {
  if (a.excess == 0 && b.excess > 0) return true;
  if (a.excess > 0) return b.excess > 0 && a.excess < b.excess;
  if (b.excess > 0) return false;
  return a.loss <= b.loss && a.cost <= b.cost && (a.loss < b.loss || a.cost < b.cost);
}

// Ranks by fast non-dominated sorting and sets the crowding distance within each front; returns the fronts.
std::vector<std::vector<std::size_t>> sort_fronts(std::vector<Individual>& pop) {
  const std::size_t n = pop.size();
  std::vector<std::vector<std::size_t>> dominated(n), fronts(1);
  std::vector<int> count(n, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      if (dominates(pop[i], pop[j]))
        dominated[i].push_back(j);
      else if (dominates(pop[j], pop[i]))
        ++count[i];
    }
  for (std::size_t i = 0; i < n; ++i)
    if (count[i] == 0) fronts[0].push_back(i);
  for (std::size_t f = 0; !fronts[f].empty(); ++f) {
    std::vector<std::size_t> next;
    for (std::size_t i : fronts[f]) {
      pop[i].rank = static_cast<int>(f);
      for (std::size_t j : dominated[i])
        if (--count[j] == 0) next.push_back(j);
    }
    fronts.push_back(std::move(next));
  }
  fronts.pop_back();
  for (auto& front : fronts) {
    for (std::size_t i : front) pop[i].crowding = 0;
    for (int objective = 0; objective < 2; ++objective) {
      auto value = [&](std::size_t i) { return objective == 0 ? pop[i].loss : pop[i].cost; };
      std::stable_sort(front.begin(), front.end(), [&](std::size_t a, std::size_t b) { return value(a) < value(b); });
      const double span = value(front.back()) - value(front.front());
      pop[front.front()].crowding = pop[front.back()].crowding = std::numeric_limits<double>::infinity();
      if (span <= 0) continue;
      for (std::size_t k = 1; k + 1 < front.size(); ++k)
        pop[front[k]].crowding += (value(front[k + 1]) - value(front[k - 1])) / span;
    }
  }
  return fronts;
}

class Evolution : public Searcher {
 public:
  Evolution(int64_t population, int64_t generations, double crossover)
      : population_(population), generations_(generations), crossover_(crossover) {}

  bool measures() const override { return true; }
  int64_t rounds() const override { return generations_ + 1; }
  SearchResult run(const Problem& p, const SearchOptions& options) const override {
    p.check();
    Scoring scoring(p, options, "evo");
    std::mt19937_64 rng(options.seed);
    const std::size_t layers = p.layers.size();
    auto make = [&](const Choice& raw) {
      Individual x;
      x.choice = within_budget(p, raw);
      x.loss = scoring.loss(x.choice);
      x.cost = p.total_cost(x.choice);
      x.excess = std::max(0.0, x.cost - p.budget);
      return x;
    };
    auto random_option = [&](std::size_t l) {
      return static_cast<int>(std::uniform_int_distribution<std::size_t>(0, p.configs[l].size() - 1)(rng));
    };
    // The first generation: the cheapest choice, the uniform baselines, the rest at random.
    std::vector<Individual> pop = {make(p.cheapest())};
    for (const Point& u : uniform_baselines(p))
      if (static_cast<int64_t>(pop.size()) < population_) pop.push_back(make(u.choice));
    while (static_cast<int64_t>(pop.size()) < population_) {
      Choice c(layers);
      for (std::size_t l = 0; l < layers; ++l) c[l] = random_option(l);
      pop.push_back(make(c));
    }
    sort_fronts(pop);
    if (scoring.round_done()) return scoring.result();
    auto tournament = [&]() -> const Individual& {
      std::uniform_int_distribution<std::size_t> pick(0, pop.size() - 1);
      const Individual &a = pop[pick(rng)], &b = pop[pick(rng)];
      if (a.rank != b.rank) return a.rank < b.rank ? a : b;
      return a.crowding >= b.crowding ? a : b;
    };
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const double mutation = 1.0 / static_cast<double>(std::max<std::size_t>(1, layers));
    for (int64_t g = 0; g < generations_; ++g) {
      std::vector<Individual> next = pop;
      for (int64_t k = 0; k < population_; ++k) {
        const Individual &a = tournament(), &b = tournament();
        Choice c = a.choice;
        if (unit(rng) < crossover_)
          for (std::size_t l = 0; l < layers; ++l)
            if (unit(rng) < 0.5) c[l] = b.choice[l];
        for (std::size_t l = 0; l < layers; ++l)
          if (unit(rng) < mutation) c[l] = random_option(l);
        next.push_back(make(c));
      }
      // Survivors: whole fronts in rank order, the last one cut by crowding distance (the widest spread kept).
      const auto fronts = sort_fronts(next);
      std::vector<Individual> survivors;
      for (auto front : fronts) {
        if (survivors.size() + front.size() > static_cast<std::size_t>(population_))
          std::stable_sort(front.begin(), front.end(),
                           [&](std::size_t x, std::size_t y) { return next[x].crowding > next[y].crowding; });
        for (std::size_t i : front)
          if (static_cast<int64_t>(survivors.size()) < population_) survivors.push_back(next[i]);
      }
      pop = std::move(survivors);
      if (scoring.round_done()) break;
    }
    return scoring.result();
  }

 private:
  int64_t population_, generations_;
  double crossover_;
};

}  // namespace

Registry<Searcher>::Entry evo_entry() {
  struct Options {
    int64_t population = 24;
    int64_t generations = 30;
    double crossover = 0.9;
  };
  return Registry<Searcher>::entry(
      "evo",
      "NSGA-II over whole choices (loss and cost, the budget as a constraint); each choice measured with every layer "
      "compressed at once",
      OptionList<Options>()
          .add(&Options::population, "population", "choices per generation", between(2, 1e6))
          .add(&Options::generations, "generations", "generations after the first", between(0, 1e6))
          .add(&Options::crossover, "crossover", "probability that a child mixes two parents (uniform crossover)",
               between(0, 1)),
      [](const Options& o) { return std::make_unique<Evolution>(o.population, o.generations, o.crossover); });
}

}  // namespace adze
