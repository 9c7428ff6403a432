// The built-in exporters, each defined in its own folder and listed in core/builtins.def.
#pragma once

#include "exporters/exporter.h"

namespace adze {

#define ADZE_EXPORTER(entry) Registry<Exporter>::Entry entry();
#include "core/builtins.def"

}  // namespace adze
