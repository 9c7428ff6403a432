// Every built-in exporter, in one list. Order here is the order `adze exporters` prints.
#include "exporters/register.h"

namespace adze {

const Registry<Exporter>& exporter_registry() {
  static const Registry<Exporter> registry = [] {
    Registry<Exporter> r("exporter");
    r.add(onnx_exporter_entry());
    r.add(torchscript_exporter_entry());
    r.add(packed_exporter_entry());
    r.add(c_header_exporter_entry());
    return r;
  }();
  return registry;
}

}  // namespace adze
