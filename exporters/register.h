// The built-in exporters, each defined in its own folder; register.cc lists them, in one place.
#pragma once

#include "exporters/exporter.h"

namespace adze {

Registry<Exporter>::Entry torchscript_exporter_entry();
Registry<Exporter>::Entry onnx_exporter_entry();
Registry<Exporter>::Entry packed_exporter_entry();
Registry<Exporter>::Entry c_header_exporter_entry();

}  // namespace adze
