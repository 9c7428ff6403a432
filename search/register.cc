// The built-in searchers, from the one list of built-ins.
#include "search/searcher.h"

namespace adze {

#define ADZE_SEARCHER(entry) Registry<Searcher>::Entry entry();
#include "core/builtins.def"

const Registry<Searcher>& searchers() {
  static const Registry<Searcher> registry("searcher", {
#define ADZE_SEARCHER(entry) entry(),
#include "core/builtins.def"
                                                       });
  return registry;
}

}  // namespace adze
