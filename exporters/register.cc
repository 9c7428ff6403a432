// The built-in exporters, from the one list of built-ins. Order there is the order `adze exporters` prints.
#include "exporters/register.h"

namespace adze {

const Registry<Exporter>& exporter_registry() {
  static const Registry<Exporter> registry("exporter", {
#define ADZE_EXPORTER(entry) entry(),
#include "core/builtins.def"
                                                       });
  return registry;
}

}  // namespace adze
