// The built-in searchers, in one list.
#include "search/searcher.h"

namespace adze {

Registry<Searcher>::Entry greedy_entry();
Registry<Searcher>::Entry dp_entry();
Registry<Searcher>::Entry evo_entry();
Registry<Searcher>::Entry rl_entry();

const Registry<Searcher>& searchers() {
  static const Registry<Searcher> registry = [] {
    Registry<Searcher> r("searcher");
    r.add(greedy_entry());
    r.add(dp_entry());
    r.add(evo_entry());
    r.add(rl_entry());
    return r;
  }();
  return registry;
}

}  // namespace adze
