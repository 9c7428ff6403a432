#include "sweep/sweep_report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "core/svg_chart.h"
#include "core/table.h"
#include "sweep/sweep_file.h"

namespace adze {
namespace {

using nlohmann::ordered_json;

std::string value_text(const ordered_json& v) {
  if (v.is_object()) {
    const auto path = v.find("path");
    return path != v.end() && path->is_string() ? path->get<std::string>() : v.dump();
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// The value at `path` inside `j`, or null when a step is missing or not an object. A result is read only
// through these: a store edited or damaged by hand gives empty cells, never an exception.
const ordered_json* value_at(const ordered_json& j, std::initializer_list<const char*> path) {
  const ordered_json* at = &j;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    const auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

std::optional<double> number_at(const ordered_json& j, std::initializer_list<const char*> path) {
  const ordered_json* at = value_at(j, path);
  return at && at->is_number() ? std::optional<double>(at->get<double>()) : std::nullopt;
}

std::optional<bool> bool_at(const ordered_json& j, std::initializer_list<const char*> path) {
  const ordered_json* at = value_at(j, path);
  return at && at->is_boolean() ? std::optional<bool>(at->get<bool>()) : std::nullopt;
}

std::string cell(const std::optional<double>& v, int decimals) { return v ? fixed(*v, decimals) : "-"; }

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// The runs not dominated by another (no larger size and no larger drop, one of them smaller), by size.
std::vector<const ReportRow*> front_of(const std::vector<const ReportRow*>& rows) {
  std::vector<const ReportRow*> front;
  for (const ReportRow* r : rows) {
    const bool dominated = std::any_of(rows.begin(), rows.end(), [&](const ReportRow* o) {
      return *o->bytes <= *r->bytes && *o->drop <= *r->drop && (*o->bytes < *r->bytes || *o->drop < *r->drop);
    });
    if (!dominated) front.push_back(r);
  }
  std::sort(front.begin(), front.end(), [](const ReportRow* a, const ReportRow* b) { return *a->bytes < *b->bytes; });
  return front;
}

}  // namespace

SweepReport make_sweep_report(const SweepStore& store) {
  SweepReport report;
  for (const StoredRun& r : store.runs()) {
    ReportRow row;
    row.id = r.id;
    row.state = r.state;
    row.axes = r.spec.at("axes");
    row.group = row.axes.contains("model") ? value_text(row.axes["model"]) : "?";
    if (row.axes.contains("target")) row.group += " @ " + value_text(row.axes["target"]);
    row.wall_s = r.wall_s;
    row.error = r.error;
    const ordered_json& result = r.result;
    if (!result.is_null()) {
      const ordered_json* task = value_at(result, {"metrics", "after", "task"});
      const bool language_model = task && *task == "language-model";
      row.metric = language_model ? "cross_entropy" : "top1";
      row.before = number_at(result, {"metrics", "before", row.metric.c_str()});
      row.after = number_at(result, {"metrics", "after", row.metric.c_str()});
      if (row.before && row.after)
        row.drop = row.metric == "top1" ? (*row.before - *row.after) * 100 : *row.after - *row.before;
      row.bytes = number_at(result, {"size", "compressed_bytes"});
      row.ratio = number_at(result, {"size", "ratio"});
      row.latency_s = number_at(result, {"cost", "latency_s"});
      if (const ordered_json* rows = value_at(result, {"bench", "rows"});
          rows && rows->is_array() && rows->size() > 1) {
        row.bench_s = number_at((*rows)[1], {"median_seconds"});
        row.speedup = number_at((*rows)[1], {"speedup_vs_first"});
      }
      row.within_budget = bool_at(result, {"search", "satisfiable"});
      bool verified = false;
      std::string failed;
      if (const ordered_json* exports = value_at(result, {"exports"}); exports && exports->is_object())
        for (const auto& [format, e] : exports->items()) {
          if (!value_at(e, {"verify"})) continue;
          verified = true;
          if (!bool_at(e, {"verify", "pass"}).value_or(false)) failed += (failed.empty() ? "" : " ") + format;
        }
      row.verify = !verified ? "" : failed.empty() ? "pass" : "FAIL " + failed;
    }
    report.rows.push_back(std::move(row));
  }
  std::stable_sort(report.rows.begin(), report.rows.end(),
                   [](const ReportRow& a, const ReportRow& b) { return a.group < b.group; });
  // Effects, within each group (one metric, one target): for each other axis with more than one value among the
  // group's done runs, the mean drop and size of the runs at each value.
  std::vector<std::string> groups;
  for (const ReportRow& r : report.rows)
    if (std::find(groups.begin(), groups.end(), r.group) == groups.end()) groups.push_back(r.group);
  for (const std::string& group : groups)
    for (const std::string& axis : sweep_axes()) {
      if (axis == "model" || axis == "target") continue;
      std::vector<std::string> order;
      std::map<std::string, AxisEffect> by_value;
      for (const ReportRow& r : report.rows) {
        if (r.group != group || !r.drop || !r.bytes || !r.axes.contains(axis)) continue;
        const std::string v = value_text(r.axes[axis]);
        if (!by_value.count(v)) {
          order.push_back(v);
          by_value[v] = {group, axis, v};
        }
        AxisEffect& e = by_value[v];
        ++e.runs;
        e.mean_drop += *r.drop;
        e.mean_bytes += *r.bytes;
      }
      if (order.size() < 2) continue;
      for (const std::string& v : order) {
        AxisEffect e = by_value[v];
        e.mean_drop /= static_cast<double>(e.runs);
        e.mean_bytes /= static_cast<double>(e.runs);
        report.effects.push_back(e);
      }
    }
  return report;
}

ordered_json to_json(const SweepReport& report) {
  ordered_json runs = ordered_json::array();
  for (const ReportRow& r : report.rows) {
    ordered_json j = {{"id", r.id}, {"state", r.state}, {"group", r.group}, {"axes", r.axes}};
    if (!r.metric.empty()) j["metric"] = r.metric;
    const auto put = [&](const char* key, const std::optional<double>& v) { j[key] = v ? ordered_json(*v) : nullptr; };
    put("before", r.before);
    put("after", r.after);
    put("drop", r.drop);
    put("compressed_bytes", r.bytes);
    put("ratio", r.ratio);
    put("latency_s", r.latency_s);
    put("bench_s", r.bench_s);
    put("speedup", r.speedup);
    if (r.within_budget) j["within_budget"] = *r.within_budget;
    j["verify"] = r.verify;
    j["wall_s"] = r.wall_s;
    if (!r.error.empty()) j["error"] = r.error;
    runs.push_back(std::move(j));
  }
  ordered_json effects = ordered_json::array();
  for (const AxisEffect& e : report.effects)
    effects.push_back({{"group", e.group},
                       {"axis", e.axis},
                       {"value", e.value},
                       {"runs", e.runs},
                       {"mean_drop", e.mean_drop},
                       {"mean_compressed_bytes", e.mean_bytes}});
  return {{"runs", runs}, {"effects", effects}};
}

std::string to_csv(const SweepReport& report) {
  std::ostringstream out;
  out << "id,state";
  for (const std::string& axis : sweep_axes()) out << "," << axis;
  out << ",metric,before,after,drop,compressed_bytes,ratio,latency_s,bench_s,speedup,within_budget,verify,wall_s,"
         "error\n";
  const auto num = [](const std::optional<double>& v) {
    if (!v) return std::string();
    std::ostringstream s;
    s.precision(10);
    s << *v;
    return s.str();
  };
  for (const ReportRow& r : report.rows) {
    out << r.id << "," << r.state;
    for (const std::string& axis : sweep_axes())
      out << "," << csv_field(r.axes.contains(axis) ? value_text(r.axes[axis]) : "");
    out << "," << r.metric << "," << num(r.before) << "," << num(r.after) << "," << num(r.drop) << "," << num(r.bytes)
        << "," << num(r.ratio) << "," << num(r.latency_s) << "," << num(r.bench_s) << "," << num(r.speedup) << ","
        << (r.within_budget ? (*r.within_budget ? "true" : "false") : "") << "," << csv_field(r.verify) << ","
        << num(r.wall_s) << "," << csv_field(r.error) << "\n";
  }
  return out.str();
}

std::string to_markdown(const SweepReport& report) {
  std::ostringstream out;
  std::string group;
  std::vector<std::string> varying;  // the axes shown per row: those with more than one value within a group
  for (const std::string& axis : sweep_axes()) {
    if (axis == "model" || axis == "target") continue;
    std::map<std::string, std::set<std::string>> seen;  // group -> values
    bool varies = false;
    for (const ReportRow& r : report.rows)
      if (r.axes.contains(axis)) {
        auto& values = seen[r.group];
        values.insert(value_text(r.axes[axis]));
        varies |= values.size() > 1;
      }
    if (varies) varying.push_back(axis);
  }
  const bool benched =
      std::any_of(report.rows.begin(), report.rows.end(), [](const ReportRow& r) { return r.bench_s; });
  const bool searched =
      std::any_of(report.rows.begin(), report.rows.end(), [](const ReportRow& r) { return r.within_budget; });
  for (std::size_t i = 0; i < report.rows.size(); ++i) {
    const ReportRow& r = report.rows[i];
    if (r.group != group) {
      group = r.group;
      out << (i ? "\n" : "") << "### " << group << "\n\n|";
      for (const std::string& axis : varying) out << " " << axis << " |";
      out << " state |" << (searched ? " budget met |" : "")
          << " metric | before | after | drop | size (KiB) | ratio | latency (ms) |"
          << (benched ? " measured (ms) | speed-up |" : "") << " verify | wall (s) |\n|";
      const std::size_t left = varying.size() + (searched ? 3 : 2);
      for (std::size_t c = 0; c < left + 8 + (benched ? 2 : 0); ++c) out << (c < left ? "---|" : "---:|");
      out << "\n";
    }
    out << "|";
    for (const std::string& axis : varying) {
      std::string v = r.axes.contains(axis) ? value_text(r.axes[axis]) : "";
      if (axis == "plan" || axis == "pipeline") v = v.substr(v.find_last_of('/') + 1);
      out << " " << v << " |";
    }
    out << " " << (r.state == "failed" ? "failed (" + r.error + ")" : r.state) << " | ";
    if (searched) out << (r.within_budget ? (*r.within_budget ? "yes" : "NO") : "-") << " | ";
    out << r.metric << " | " << cell(r.before, 4) << " | " << cell(r.after, 4) << " | "
        << cell(r.drop, r.metric == "top1" ? 2 : 4) << " | " << (r.bytes ? fixed(*r.bytes / 1024, 2) : "-") << " | "
        << cell(r.ratio, 2) << " | " << (r.latency_s ? fixed(*r.latency_s * 1e3, 4) : "-") << " | ";
    if (benched)
      out << (r.bench_s ? fixed(*r.bench_s * 1e3, 4) : "-") << " | " << (r.speedup ? fixed(*r.speedup, 2) + "x" : "-")
          << " | ";
    out << (r.verify.empty() ? "-" : r.verify) << " | " << fixed(r.wall_s, 1) << " |\n";
  }
  if (!report.effects.empty()) {
    out << "\n### Effects per axis (mean over each group's done runs at each value)\n\n| group | axis | value | runs | "
           "mean drop | mean size (KiB) |\n|---|---|---|---:|---:|---:|\n";
    for (const AxisEffect& e : report.effects) {
      std::string value = e.value;
      if (e.axis == "plan" || e.axis == "pipeline") value = value.substr(value.find_last_of('/') + 1);
      const bool top1 = std::any_of(report.rows.begin(), report.rows.end(),
                                    [&](const ReportRow& r) { return r.group == e.group && r.metric == "top1"; });
      out << "| " << e.group << " | " << e.axis << " | " << value << " | " << e.runs << " | "
          << fixed(e.mean_drop, top1 ? 2 : 4) << " | " << fixed(e.mean_bytes / 1024, 2) << " |\n";
    }
  }
  out << "\ndrop: top-1 points lost, or the increase of cross-entropy (nats); latency: the roofline's on the run's "
         "target, batch 1.\n";
  if (benched)
    out << "measured: the first export's median latency in its runtime, timed by adze bench in the run; speed-up: "
           "the model's median (libtorch) over it, side by side on the CPU that ran the run.\n";
  return out.str();
}

std::vector<std::pair<std::string, std::string>> pareto_svgs(const SweepReport& report) {
  std::map<std::string, std::vector<const ReportRow*>> groups;
  std::vector<std::string> order;
  for (const ReportRow& r : report.rows)
    if (r.drop && r.bytes) {
      if (!groups.count(r.group)) order.push_back(r.group);
      groups[r.group].push_back(&r);
    }
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& g : order) {
    const auto& rows = groups[g];
    double x0 = 1e300, x1 = -1e300, y0 = 0, y1 = 1e-9;
    for (const ReportRow* r : rows) {
      x0 = std::min(x0, *r->bytes / 1024);
      x1 = std::max(x1, *r->bytes / 1024);
      y0 = std::min(y0, *r->drop);
      y1 = std::max(y1, *r->drop);
    }
    const auto [left, right] = padded(x0, x1, 0.05);
    const auto [bottom, top] = padded(y0, y1, 0.08);
    const std::string metric = rows.front()->metric == "top1" ? "top-1 points lost" : "cross-entropy increase (nats)";
    Chart c(left, right, bottom, top, "sweep: " + g + " (" + std::to_string(rows.size()) + " runs)",
            "compressed size (KiB)", metric);
    const auto front = front_of(rows);
    c.s << "<polyline fill=\"none\" stroke=\"#2a2\" stroke-width=\"1.5\" points=\"";
    for (const ReportRow* r : front) c.s << c.X(*r->bytes / 1024) << "," << c.Y(*r->drop) << " ";
    c.s << "\"/>\n";
    for (const ReportRow* r : rows)
      c.s << "<circle cx=\"" << c.X(*r->bytes / 1024) << "\" cy=\"" << c.Y(*r->drop) << "\" r=\"3\" fill=\"#4a78b5\">"
          << "<title>" << xml_escape(describe_axes(r->axes)) << "</title></circle>\n";
    for (const ReportRow* r : front) {
      std::string label = r->axes.contains("plan") ? value_text(r->axes["plan"])
                                                   : "budget " + value_text(r->axes.value("budget", ordered_json("")));
      c.ring(*r->bytes / 1024, *r->drop, label.substr(label.find_last_of('/') + 1));
    }
    out.emplace_back(g, c.finish());
  }
  return out;
}

}  // namespace adze
