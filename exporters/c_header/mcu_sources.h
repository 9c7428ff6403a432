// The reference interpreter's C sources (adze_mcu.h, adze_mcu.c, adze_host_main.c in this folder), compiled
// into adze so that the exporter writes them without finding the source tree.
#pragma once

namespace adze {
namespace c_header {

extern const char* const kMcuHeader;
extern const char* const kMcuSource;
extern const char* const kHostMain;

}  // namespace c_header
}  // namespace adze
