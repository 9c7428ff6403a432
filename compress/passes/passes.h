// The built-in passes, each defined in its own file and listed in core/builtins.def.
#pragma once

#include "compress/pass.h"

namespace adze {

#define ADZE_PASS(entry) PassRegistry::Entry entry();
#include "core/builtins.def"

}  // namespace adze
