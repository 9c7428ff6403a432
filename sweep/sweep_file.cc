#include "sweep/sweep_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/options.h"
#include "exporters/exporter.h"
#include "hardware/cost_model.h"
#include "search/budget.h"
#include "search/search_space.h"
#include "search/searcher.h"

namespace adze {
namespace {

using nlohmann::ordered_json;

Error bad(const std::string& where, const std::string& what) {
  return Error(ErrorKind::kInvalidConfig, "invalid sweep '" + where + "': " + what);
}

// A YAML document as JSON: quoted scalars stay strings; plain ones become null, booleans and numbers where
// they read as such.
ordered_json from_yaml(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Sequence: {
      ordered_json out = ordered_json::array();
      for (const auto& e : n) out.push_back(from_yaml(e));
      return out;
    }
    case YAML::NodeType::Map: {
      ordered_json out = ordered_json::object();
      for (const auto& kv : n) out[kv.first.as<std::string>()] = from_yaml(kv.second);
      return out;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted
  if (s == "null" || s == "~") return nullptr;
  if (s == "true" || s == "false") return s == "true";
  try {
    std::size_t used = 0;
    const long long i = std::stoll(s, &used);
    if (used == s.size()) return i;
    const double d = std::stod(s, &used);
    if (used == s.size()) return d;
  } catch (const std::exception&) {
  }
  return s;
}

std::string short_value(const ordered_json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// Checks one axis value's type: "" or why not.
std::string value_error(const std::string& axis, const ordered_json& v) {
  if (axis == "seed") return v.is_number_integer() && v.get<int64_t>() >= 0 ? "" : "expected an integer >= 0";
  if (axis == "budget") {
    if (!v.is_string()) return "expected a budget such as \"size=200KB\"";
    try {
      parse_budget(v.get<std::string>());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  if (axis == "model" && v.is_object()) {
    for (const auto& [key, field] : v.items()) {
      if (key != "path" && key != "input_shape" && key != "input_dtype")
        return "unknown field '" + key + "' (expected path, input_shape, input_dtype)";
      if (!field.is_string() || field.get<std::string>().empty()) return "field '" + key + "' must be a string";
    }
    return v.contains("path") ? "" : "a model object needs a 'path'";
  }
  return v.is_string() && !v.get<std::string>().empty() ? "" : "expected a non-empty string";
}

void check_axis(const std::string& where, const std::string& field, const std::string& axis) {
  const auto& axes = sweep_axes();
  if (std::find(axes.begin(), axes.end(), axis) == axes.end())
    throw bad(where,
              field + ": unknown axis '" + axis + "' (expected model, plan, pipeline, target, budget, seed or data)");
}

void check_values(const std::string& where, const std::string& field, const std::string& axis,
                  const ordered_json& values) {
  check_axis(where, field, axis);
  if (!values.is_array() || values.empty())
    throw bad(where, field + " axis '" + axis + "': expected a non-empty list of values");
  for (const auto& v : values)
    if (const std::string why = value_error(axis, v); !why.empty())
      throw bad(where, field + " axis '" + axis + "' value " + short_value(v) + ": " + why);
}

// The search settings of a search sweep, every key present (defaults filled in) and checked: the searcher and
// its options, the space, the cost model and the duration resolve.
ordered_json parse_search_settings(const ordered_json& given, const std::string& where) {
  ordered_json s = {{"algo", "dp"},         {"algo_options", ordered_json::object()},
                    {"bits", {2, 3, 4, 8}}, {"nm", {"none", "2:4"}},
                    {"act_bits", {0}},      {"decompose", {"none"}},
                    {"split", "train"},     {"limit", 256},
                    {"probes", 8},          {"cost_model", "roofline"},
                    {"batch", 1},           {"confirm", 0},
                    {"time_budget", ""},    {"exporter", ""}};
  if (!given.is_object()) throw bad(where, "search: expected an object of settings");
  for (const auto& [key, value] : given.items()) {
    if (!s.contains(key))
      throw bad(where, "search: unknown setting '" + key +
                           "' (expected algo, algo_options, bits, nm, act_bits, decompose, split, limit, probes, "
                           "cost_model, batch, confirm, time_budget, exporter)");
    const ordered_json& d = s[key];
    const bool ok =
        d.is_string()           ? value.is_string()
        : d.is_object()         ? value.is_object()
        : d.is_number_integer() ? value.is_number_integer() && value.get<int64_t>() >= 0
        : d[0].is_string()
            ? value.is_array() && !value.empty() &&
                  std::all_of(value.begin(), value.end(), [](const ordered_json& v) { return v.is_string(); })
            : value.is_array() && !value.empty() &&
                  std::all_of(value.begin(), value.end(), [](const ordered_json& v) { return v.is_number_integer(); });
    if (!ok)
      throw bad(where, "search." + key + " " + short_value(value) + ": expected " +
                           (d.is_string()           ? "a string"
                            : d.is_object()         ? "an object"
                            : d.is_number_integer() ? "an integer >= 0"
                            : d[0].is_string()      ? "a non-empty list of strings"
                                                    : "a non-empty list of integers"));
    s[key] = value;
  }
  const auto check = [&](const std::string& key, const auto& call) {
    try {
      call();
    } catch (const Error& e) {
      const std::string what = e.what();  // one that names its setting already ("search.algo: unknown ...") as is
      throw bad(where,
                what.rfind("search.", 0) == 0 ? what : "search." + key + " " + short_value(s[key]) + ": " + what);
    }
  };
  check("algo", [&] {
    resolve_options(searchers().get(s["algo"], "search.algo").options, s["algo_options"], "search.algo_options");
  });
  check("bits", [&] {
    space_spec(s["bits"].get<std::vector<int>>(), s["nm"].get<std::vector<std::string>>(),
               s["act_bits"].get<std::vector<int>>(), s["decompose"].get<std::vector<std::string>>());
  });
  check("cost_model", [&] { cost_models().get(s["cost_model"], "search.cost_model"); });
  if (s["limit"] < 1) throw bad(where, "search.limit 0: expected an integer >= 1");
  if (s["batch"] < 1) throw bad(where, "search.batch 0: expected an integer >= 1");
  if (!s["time_budget"].get<std::string>().empty())
    check("time_budget", [&] { parse_duration(s["time_budget"], "search.time_budget"); });
  return s;
}

// The bench settings: true (the defaults), false (none: null) or an object of them.
ordered_json parse_bench_settings(const ordered_json& given, const std::string& where,
                                  const std::vector<std::string>& exports) {
  if (given.is_boolean() && !given.get<bool>()) return nullptr;
  ordered_json s = {{"runs", 50}, {"warmup", 5}, {"threads", 1}, {"activations", "dynamic"}};
  if (!given.is_boolean()) {
    if (!given.is_object()) throw bad(where, "bench: expected true, false or an object of settings");
    for (const auto& [key, value] : given.items()) {
      if (!s.contains(key))
        throw bad(where, "bench: unknown setting '" + key + "' (expected runs, warmup, threads, activations)");
      if (key == "activations" ? !(value == "dynamic" || value == "float")
                               : !(value.is_number_integer() && value.get<int64_t>() >= (key == "warmup" ? 0 : 1)))
        throw bad(where, "bench." + key + " " + short_value(value) + ": expected " +
                             (key == "activations" ? std::string("dynamic or float")
                              : key == "warmup"    ? "an integer >= 0"
                                                   : "an integer >= 1"));
      s[key] = value;
    }
  }
  if (exports.empty()) throw bad(where, "bench needs formats in 'export' (it times each export against the model)");
  return s;
}

// Every key of `entry` equal in `axes`.
bool matches(const ordered_json& axes, const ordered_json& entry) {
  for (const auto& [axis, value] : entry.items())
    if (!axes.contains(axis) || axes[axis] != value) return false;
  return true;
}

}  // namespace

const std::vector<std::string>& sweep_axes() {
  static const std::vector<std::string> axes = {"model", "plan", "pipeline", "target", "budget", "seed", "data"};
  return axes;
}

ordered_json SweepFile::canonical() const {
  ordered_json out;
  out["kind"] = kind;
  out["grid"] = grid;
  out["zip"] = zip;
  out["exclude"] = exclude;
  out["options"] = options;
  out["export"] = exports;
  out["verify"] = verify;
  if (kind == "search") out["search"] = search;
  if (!bench.is_null()) out["bench"] = bench;
  return out;
}

SweepFile parse_sweep(const ordered_json& doc, const std::string& where) {
  if (!doc.is_object()) throw bad(where, "expected an object with 'grid'");
  static const std::set<std::string> fields = {"kind",   "grid",   "zip",    "exclude", "options",
                                               "export", "verify", "search", "bench",   "comment"};
  for (const auto& [key, _] : doc.items())
    if (!fields.count(key))
      throw bad(where, "unknown field '" + key +
                           "' (expected kind, grid, zip, exclude, options, export, verify, search, bench)");
  SweepFile s;
  s.path = where;
  if (doc.contains("kind")) {
    const ordered_json& kind = doc["kind"];
    if (!kind.is_string() || (kind != "compress" && kind != "search"))
      throw bad(where, "kind " + short_value(kind) + ": expected \"compress\" or \"search\"");
    s.kind = kind.get<std::string>();
  }
  s.grid = doc.value("grid", ordered_json::object());
  if (!s.grid.is_object()) throw bad(where, "grid: expected an object of axis -> values");
  std::set<std::string> seen;
  for (const auto& [axis, values] : s.grid.items()) {
    check_values(where, "grid", axis, values);
    seen.insert(axis);
  }
  if (doc.contains("zip")) {
    const ordered_json& zip = doc["zip"];
    if (!zip.is_array()) throw bad(where, "zip: expected a list of groups, each an object of axis -> values");
    for (std::size_t g = 0; g < zip.size(); ++g) {
      const std::string field = "zip group " + std::to_string(g);
      if (!zip[g].is_object() || zip[g].empty()) throw bad(where, field + ": expected an object of axis -> values");
      std::size_t length = 0;
      for (const auto& [axis, values] : zip[g].items()) {
        check_values(where, field, axis, values);
        if (!seen.insert(axis).second) throw bad(where, field + " axis '" + axis + "': set twice");
        if (length && values.size() != length)
          throw bad(where, field + " axis '" + axis + "': " + std::to_string(values.size()) + " values, the group's " +
                               "other lists " + std::to_string(length));
        length = values.size();
      }
      s.zip.push_back(zip[g]);
    }
  }
  if (s.grid.empty() && s.zip.empty()) throw bad(where, "grid is empty: no runs");
  const bool search = s.kind == "search";
  for (const char* required : {"model", "pipeline"})
    if (!seen.count(required)) throw bad(where, std::string("no '") + required + "' axis: every run needs one");
  if (search) {
    for (const char* required : {"budget", "target", "data"})
      if (!seen.count(required))
        throw bad(where, std::string("no '") + required + "' axis: a search run needs one (kind: search)");
    if (seen.count("plan")) throw bad(where, "a 'plan' axis in a search sweep: a search run finds its plan");
  } else {
    if (!seen.count("plan")) throw bad(where, "no 'plan' axis: every compress run needs one");
    if (seen.count("budget")) throw bad(where, "a 'budget' axis needs kind: search (a compress run's plan is given)");
    if (doc.contains("search")) throw bad(where, "a 'search' field needs kind: search");
  }
  if (search) s.search = parse_search_settings(doc.value("search", ordered_json::object()), where);
  if (doc.contains("exclude")) {
    const ordered_json& exclude = doc["exclude"];
    if (!exclude.is_array()) throw bad(where, "exclude: expected a list of objects of axis -> value");
    for (std::size_t i = 0; i < exclude.size(); ++i) {
      const std::string field = "exclude entry " + std::to_string(i);
      if (!exclude[i].is_object() || exclude[i].empty())
        throw bad(where, field + ": expected an object of axis -> value");
      for (const auto& [axis, value] : exclude[i].items()) {
        check_axis(where, field, axis);
        if (const std::string why = value_error(axis, value); !why.empty())
          throw bad(where, field + " axis '" + axis + "' value " + short_value(value) + ": " + why);
      }
      s.exclude.push_back(exclude[i]);
    }
  }
  s.options = {{"split", "test"}, {"limit", 0}, {"train_split", "train"}, {"train_limit", 0}, {"batch_size", 0}};
  if (doc.contains("options")) {
    if (!doc["options"].is_object()) throw bad(where, "options: expected an object");
    for (const auto& [key, value] : doc["options"].items()) {
      if (!s.options.contains(key))
        throw bad(where, "options: unknown option '" + key +
                             "' (expected split, limit, train_split, train_limit, "
                             "batch_size)");
      const bool text = key == "split" || key == "train_split";
      if (text ? !value.is_string() : !(value.is_number_integer() && value.get<int64_t>() >= 0))
        throw bad(where, "options." + key + " " + short_value(value) + ": expected " +
                             (text ? "a split name" : "an integer >= 0"));
      s.options[key] = value;
    }
  }
  if (doc.contains("export")) {
    const ordered_json& e = doc["export"];
    if (!e.is_array()) throw bad(where, "export: expected a list of formats");
    for (const auto& f : e) {
      if (!f.is_string()) throw bad(where, "export: format " + short_value(f) + " is not a string");
      s.exports.push_back(f.get<std::string>());
    }
  }
  if (doc.contains("verify")) {
    if (!doc["verify"].is_boolean()) throw bad(where, "verify: expected true or false");
    s.verify = doc["verify"].get<bool>();
    if (s.verify && s.exports.empty()) throw bad(where, "verify: true needs formats in 'export'");
  }
  if (doc.contains("bench")) s.bench = parse_bench_settings(doc["bench"], where, s.exports);
  // A search keeps to what the first export format can write, unless its settings name an exporter.
  if (search && s.search["exporter"] == "" && !s.exports.empty()) s.search["exporter"] = s.exports.front();
  if (search && s.search["exporter"] != "") try {
      exporter_registry().get(s.search["exporter"], "search.exporter");
    } catch (const Error& e) {
      throw bad(where, e.what());
    }
  return s;
}

SweepFile load_sweep_file(const std::string& path) {
  const std::string text = read_file_text(path);
  const std::string ext = std::filesystem::path(path).extension().string();
  ordered_json doc;
  if (ext == ".yaml" || ext == ".yml") {
    try {
      doc = from_yaml(YAML::Load(text));
    } catch (const YAML::Exception& e) {
      throw bad(path, "not YAML (line " + std::to_string(e.mark.line + 1) + ": " + e.msg + ")");
    }
    try {  // YAML keeps any bytes in its scalars; a sweep file is stored and printed as JSON, which needs UTF-8
      (void)doc.dump();
    } catch (const nlohmann::json::type_error& e) {
      throw bad(path, std::string("not UTF-8 text (") + first_line_of(e) + ")");
    }
  } else {
    try {
      doc = ordered_json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw bad(path, std::string("not JSON (") + first_line_of(e) + "; YAML files end in .yaml or .yml)");
    }
  }
  return parse_sweep(doc, path);
}

std::vector<SweepRun> expand_sweep(const SweepFile& s) {
  std::vector<ordered_json> rows = {ordered_json::object()};
  for (const std::string& axis : sweep_axes()) {
    if (!s.grid.contains(axis)) continue;
    std::vector<ordered_json> next;
    for (const auto& row : rows)
      for (const auto& v : s.grid[axis]) {
        ordered_json r = row;
        r[axis] = v;
        next.push_back(std::move(r));
      }
    rows = std::move(next);
  }
  for (const auto& group : s.zip) {
    const std::size_t length = group.begin()->size();
    std::vector<ordered_json> next;
    for (const auto& row : rows)
      for (std::size_t i = 0; i < length; ++i) {
        ordered_json r = row;
        for (const auto& [axis, values] : group.items()) r[axis] = values[i];
        next.push_back(std::move(r));
      }
    rows = std::move(next);
  }
  std::vector<SweepRun> runs;
  for (auto& row : rows) {
    if (std::any_of(s.exclude.begin(), s.exclude.end(), [&](const ordered_json& e) { return matches(row, e); }))
      continue;
    ordered_json axes = ordered_json::object();  // in sweep_axes() order
    for (const std::string& axis : sweep_axes())
      if (row.contains(axis)) axes[axis] = row[axis];
    if (!axes.contains("seed")) axes["seed"] = 0;
    runs.push_back({static_cast<int64_t>(runs.size()), std::move(axes)});
  }
  if (runs.empty()) throw bad(s.path, "every run is excluded: no runs");
  return runs;
}

std::string describe_axes(const ordered_json& axes) {
  std::string out;
  for (const auto& [axis, value] : axes.items()) {
    const auto path = value.is_object() ? value.find("path") : value.end();
    std::string v = value.is_object()   ? (path != value.end() && path->is_string() ? path->get<std::string>() : "")
                    : value.is_string() ? value.get<std::string>()
                                        : value.dump();
    if (axis == "plan" || axis == "pipeline" || axis == "model") v = std::filesystem::path(v).filename().string();
    out += (out.empty() ? "" : " ") + axis + "=" + v;
  }
  return out;
}

}  // namespace adze
