// What the searchers that score whole choices (evo, rl) share: each choice scored once (measured when the
// caller gives a measure, else the table's sum), every scored point kept for the front, the anytime hooks.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "search/searcher.h"

namespace adze {

class Scoring {
 public:
  Scoring(const Problem& problem, const SearchOptions& options, std::string label)
      : problem_(problem), options_(options), label_(std::move(label)) {}

  /// The loss of `c`, scored on first sight and remembered.
  double loss(const Choice& c) {
    if (const auto it = scored_.find(c); it != scored_.end()) return it->second;
    const double v = options_.measure ? options_.measure(c) : problem_.total_loss(c);
    scored_.emplace(c, v);
    points_.push_back(Point{c, v, problem_.total_cost(c), label_});
    return v;
  }
  /// The result over every scored point.
  SearchResult result() const { return result_of(problem_, points_, static_cast<int64_t>(scored_.size())); }
  /// The end of a round: reports the result so far; true when the caller asks the search to stop.
  bool round_done() const {
    if (options_.progress) options_.progress(result());
    return options_.stop && options_.stop();
  }

 private:
  const Problem& problem_;
  const SearchOptions& options_;
  std::string label_;
  std::map<Choice, double> scored_;
  std::vector<Point> points_;
};

}  // namespace adze
