// The built-in passes, from the one list of built-ins. Order there is the order `adze passes` prints.
#include "compress/passes/passes.h"

namespace adze {

const PassRegistry& pass_registry() {
  static const PassRegistry registry("pass", {
#define ADZE_PASS(entry) entry(),
#include "core/builtins.def"
                                             });
  return registry;
}

}  // namespace adze
