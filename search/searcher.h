// Searchers: given per layer a list of options, each with a predicted accuracy cost (the loss increase the
// sensitivity table measured for that layer alone, summed over layers as HAWQ-V3's integer program assumes) and
// a hardware cost in the budget's metric (size, latency and energy are sums over layers in the cost models),
// find the choice with the least predicted loss within the budget, and the Pareto front of loss against cost.
//
// Searchers share the Registry idiom of passes and exporters (register.cc). Every one is deterministic for a
// seed. uniform_baselines() gives the plans a user would try by hand (the same option on every layer).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "compress/encoding.h"
#include "core/registry.h"

namespace adze {

using Choice = std::vector<int>;  ///< per layer, an index into Problem::configs[layer]

struct Problem {
  std::vector<std::string> layers;
  std::vector<std::vector<LayerConfig>> configs;
  std::vector<std::vector<double>> loss;  ///< predicted loss increase per option
  std::vector<std::vector<double>> cost;  ///< per option, in the budget's unit
  double fixed_cost = 0;                  ///< what the choice does not change (unencoded parameters' bytes)
  double budget = 0;
  double total_cost(const Choice& c) const;
  double total_loss(const Choice& c) const;
  /// Every layer at its cheapest option (the most compressed legal config).
  Choice cheapest() const;
  /// Error(kInternal) unless every table has one row per layer and one entry per option, all finite.
  void check() const;
};

struct Point {
  Choice choice;
  double loss = 0, cost = 0;
  std::string label;  ///< "uniform w4", "dp", …
};

struct SearchResult {
  Point best;                ///< least predicted loss within the budget; the cheapest choice when none fits
  bool satisfiable = true;   ///< false: no choice fits; `best` is the closest (cheapest) one
  std::vector<Point> front;  ///< Pareto-optimal points found (cost ascending, loss descending)
  int64_t evaluated = 0;     ///< choices the searcher scored
};

struct SearchOptions {
  uint64_t seed = 0;
  /// The loss increase of a whole choice, measured with every layer compressed as chosen at once (the searchers
  /// that score whole choices, evo and rl, use it; greedy and dp solve over the table). Empty: the table's sum,
  /// Problem::total_loss. The caller may memoize it (adze search keeps every measured point for --resume).
  std::function<double(const Choice&)> measure;
  /// Called with the result so far after every round (a generation, an episode): the anytime hook.
  std::function<void(const SearchResult&)> progress;
  /// Asked before every round: true ends the search with the result so far (--time-budget).
  std::function<bool()> stop;
};

class Searcher {
 public:
  virtual ~Searcher() = default;
  virtual SearchResult run(const Problem& problem, const SearchOptions& options) const = 0;
  /// Whether it scores whole choices with SearchOptions::measure (evo, rl) rather than the table (greedy, dp).
  virtual bool measures() const { return false; }
  /// How many rounds (SearchOptions::progress calls) a whole run makes, for progress bars.
  virtual int64_t rounds() const { return 1; }
};

/// The built-in searchers (search/register.cc): greedy, dp, evo, rl.
const Registry<Searcher>& searchers();

/// One point per option label found on every layer ("w4", "w8 2:4"): each layer takes that option, or, where the
/// layer cannot (a first convolution without 2:4), the same weight bits dense.
std::vector<Point> uniform_baselines(const Problem& problem);

/// The search result over `points` (the cheapest choice is added, with the table's loss, unless present): their Pareto
/// front, the least-loss point within the budget, or the cheapest when nothing fits.
SearchResult result_of(const Problem& problem, std::vector<Point> points, int64_t evaluated);

/// `choice` moved within the budget where it can be: while it costs too much, the layer whose next cheaper
/// option adds the least predicted loss (the table's) per unit of cost saved takes that option. Layer `held`
/// (-1: none) keeps its option. Stops when no layer can go cheaper.
Choice within_budget(const Problem& problem, Choice choice, int held = -1);

/// The runners-up to `best`, for choosing among plans by what a loss cannot foresee (a fine-tune): the points
/// of `front` within the budget and the one-layer neighbours of `best` (one layer set to each of its other
/// options, the others moved within the budget around it), distinct, other than `best`, within the budget,
/// ranked by `loss` (the table's sum when empty) and cut to `count`. Labelled "alternative 1", "alternative 2"...
std::vector<Point> alternatives(const Problem& problem, const Choice& best, const std::vector<Point>& front,
                                std::size_t count, const std::function<double(const Choice&)>& loss = {});

/// The non-dominated points of `points` (no other has both lower or equal cost and lower or equal loss), cost
/// ascending.
std::vector<Point> pareto_front(std::vector<Point> points);

}  // namespace adze
