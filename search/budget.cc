#include "search/budget.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/table.h"

namespace adze {

const char* to_string(Budget::Metric m) {
  switch (m) {
    case Budget::Metric::kLatency:
      return "latency";
    case Budget::Metric::kSize:
      return "size";
    case Budget::Metric::kEnergy:
      return "energy";
    case Budget::Metric::kBits:
      return "bits";
  }
  return "?";
}

std::string unit_of(Budget::Metric m) {
  switch (m) {
    case Budget::Metric::kSize:
      return "bytes";
    case Budget::Metric::kLatency:
      return "seconds";
    case Budget::Metric::kEnergy:
      return "joules";
    case Budget::Metric::kBits:
      return "bits per weight";
  }
  return "?";
}

std::string human_cost(Budget::Metric m, double v) {
  switch (m) {
    case Budget::Metric::kSize:
      return human_bytes(v);
    case Budget::Metric::kLatency:
      return human_seconds(v);
    case Budget::Metric::kEnergy:
      return fixed(v * 1e3, 4) + " mJ";
    case Budget::Metric::kBits:
      return fixed(v, 3) + " b/w";
  }
  return "?";
}

Budget parse_budget(const std::string& text) {
  auto bad = [&](const std::string& what) {
    return Error(
        ErrorKind::kInvalidArgument,
        "--budget '" + text + "': " + what +
            " (expected latency=2ms, size=200KB, energy=1mJ or bits=4; units s ms us µs ns, B KB KiB MB MiB GB, "
            "J mJ uJ µJ, bits with none)");
  };
  const auto eq = text.find('=');
  if (eq == std::string::npos) throw bad("no '='");
  const std::string metric = text.substr(0, eq), amount = text.substr(eq + 1);
  static const std::map<std::string, std::pair<Budget::Metric, std::map<std::string, double>>> units = {
      {"latency", {Budget::Metric::kLatency, {{"s", 1}, {"ms", 1e-3}, {"us", 1e-6}, {"µs", 1e-6}, {"ns", 1e-9}}}},
      {"size",
       {Budget::Metric::kSize,
        {{"B", 1}, {"KB", 1e3}, {"kB", 1e3}, {"KiB", 1024}, {"MB", 1e6}, {"MiB", 1048576}, {"GB", 1e9}}}},
      {"energy", {Budget::Metric::kEnergy, {{"J", 1}, {"mJ", 1e-3}, {"uJ", 1e-6}, {"µJ", 1e-6}, {"nJ", 1e-9}}}},
      {"bits", {Budget::Metric::kBits, {{"", 1}}}},
  };
  const auto m = units.find(metric);
  if (m == units.end()) throw bad("unknown metric '" + metric + "'");
  const char* begin = amount.c_str();
  char* end = nullptr;
  const double number = std::strtod(begin, &end);
  if (end == begin) throw bad("no number");
  const std::string unit(end);
  const auto u = m->second.second.find(unit);
  if (u == m->second.second.end()) throw bad("unknown unit '" + unit + "' for " + metric);
  if (!(number > 0) || !std::isfinite(number)) throw bad("the amount must be a positive number");
  Budget b;
  b.metric = m->second.first;
  b.value = number * u->second;
  b.text = text;
  return b;
}

double parse_duration(const std::string& text, const std::string& flag) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double number = std::strtod(begin, &end);
  static const std::map<std::string, double> units = {{"", 1}, {"s", 1}, {"min", 60}, {"h", 3600}};
  const auto u = units.find(end);
  if (end == begin || u == units.end() || !(number > 0) || !std::isfinite(number))
    throw Error(ErrorKind::kInvalidArgument,
                flag + " '" + text + "': expected a positive duration such as 90s, 10min or 2h");
  return number * u->second;
}

std::string Budget::to_string() const {
  return std::string(adze::to_string(metric)) + " <= " + text.substr(text.find('=') + 1);
}

}  // namespace adze
