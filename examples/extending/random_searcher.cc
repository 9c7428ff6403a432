// A worked example of a searcher (docs/design.md, "How to add"): "example.random" draws whole choices at
// random, keeps those within the budget, and reports after every draw (anytime). As a built-in it would live in
// search/ and take one line of core/builtins.def: ADZE_SEARCHER(random_entry).
#include <random>

#include "search/searcher.h"

namespace adze::example {
namespace {

class RandomSearcher : public Searcher {
 public:
  explicit RandomSearcher(int64_t draws) : draws_(draws) {}
  SearchResult run(const Problem& problem, const SearchOptions& options) const override {
    std::mt19937_64 rng(options.seed);
    std::vector<Point> points;
    for (int64_t d = 0; d < draws_; ++d) {
      if (options.stop && options.stop()) break;
      Choice c;
      for (const auto& layer : problem.configs)
        c.push_back(static_cast<int>(std::uniform_int_distribution<std::size_t>(0, layer.size() - 1)(rng)));
      points.push_back({c, problem.total_loss(c), problem.total_cost(c), "example.random"});
      if (options.progress) options.progress(result_of(problem, points, d + 1));
    }
    return result_of(problem, points, static_cast<int64_t>(points.size()));
  }
  int64_t rounds() const override { return draws_; }

 private:
  int64_t draws_;
};

}  // namespace

Registry<Searcher>::Entry random_entry() {
  struct Options {
    int64_t draws = 50;
  };
  return Registry<Searcher>::entry(
      "example.random", "whole choices drawn at random (a baseline for the real searchers)",
      OptionList<Options>().add(&Options::draws, "draws", "choices drawn", between(1, 1e6)),
      [](const Options& o) { return std::make_unique<RandomSearcher>(o.draws); });
}

}  // namespace adze::example
