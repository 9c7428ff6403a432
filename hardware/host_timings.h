// Timings of this machine that the measured cost model takes (a convolution timed whole, the ops between a model's
// layers), kept on disk so that a search priced by them chooses the same plan every time it runs here, as the
// cost table (host_lut.h) does: ~/.cache/adze/targets/host-timings.json (read once, and again only when it
// changes), one entry per key, each key naming the instruction set and threads it was measured with.
// `adze target calibrate host` empties it.
#pragma once

#include <functional>
#include <string>

namespace adze {

/// The seconds cached under `key` (prefixed here with the runtime's instruction set and the threads), else
/// measure() cached and returned. An unreadable or malformed cache counts as empty and is written anew.
double cached_host_seconds(const std::string& key, const std::function<double()>& measure);

/// Forgets every cached timing (after a new calibration).
void clear_host_timings();

}  // namespace adze
