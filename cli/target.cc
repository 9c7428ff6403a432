// adze target list | show NAME | calibrate host: the hardware adze prices plans for (configs/targets).
#include "hardware/target.h"

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/table.h"
#include "hardware/host_calibration.h"
#include "hardware/host_lut.h"
#include "hardware/host_timings.h"

namespace adze::cli {
namespace {

void show(const Target& t) {
  std::cout << t.name << " (" << t.kind << "): " << t.description << "\nfrom " << t.origin << "\n";
  std::cout << "runs weight bits " << join(t.weight_bits) << "; activation bits " << join(t.act_bits)
            << " (0: float); float layers in " << t.float_precision << "\n\n";
  Table table;
  table.add_column("figure");
  table.add_column("value", Table::Align::kRight);
  table.add_column("source");
  auto row = [&](const std::string& what, const std::string& value, const Figure& f) {
    table.add_row({what, value, (f.assumed() ? "* " : "") + f.source});
  };
  for (const auto& [p, f] : t.macs_per_s) row("peak " + p, human_si(f.value, "MAC/s"), f);
  for (const auto& [p, f] : t.nm_speedup) row(p + " compute speedup", fixed(f.value, 2) + "x", f);
  if (t.nm_flexible_efficiency)
    row("any N:M: efficiency x M/N", fixed(t.nm_flexible_efficiency->value, 2), *t.nm_flexible_efficiency);
  row("per-layer overhead", human_seconds(t.layer_overhead_s.value), t.layer_overhead_s);
  for (const auto& m : t.memory) {
    row(m.name + " capacity", human_bytes(m.bytes.value), m.bytes);
    row(m.name + " bandwidth", human_si(m.bytes_per_s.value, "B/s"), m.bytes_per_s);
    row(m.name + " energy", fixed(m.pj_per_byte.value, 2) + " pJ/B", m.pj_per_byte);
  }
  for (const auto& [p, f] : t.pj_per_mac) row("energy " + p, fixed(f.value, 2) + " pJ/MAC", f);
  if (t.storage_bytes_per_s) row("storage read", human_si(t.storage_bytes_per_s->value, "B/s"), *t.storage_bytes_per_s);
  table.print(std::cout);
  if (!t.weights_in.empty() || !t.activations_in.empty())
    std::cout << "weights must fit " << t.weights_in << ", activations " << t.activations_in << "\n";
  std::cout << "(* an assumption, not a published or measured figure)\n";
}

}  // namespace

void setup_target(CLI::App& app) {
  auto* sub = app.add_subcommand("target", "The hardware targets that cost models and the search price plans for");
  sub->require_subcommand(1);
  sub->footer(
      "Targets are JSON files (configs/targets/*.json, compiled into adze; schema adze.target.v1): peak MACs/s\n"
      "per operand precision, N:M speedups, bit-widths it runs, a memory hierarchy (capacity, bandwidth, pJ per\n"
      "byte per level), pJ per MAC, storage bandwidth. Every figure carries its source; assumptions say so.\n"
      "Anywhere a target is asked for, a path to such a file works too. 'host' is this machine, measured.\n\n"
      "Examples:\n"
      "  adze target list\n"
      "  adze target show a100\n"
      "  adze target calibrate host");
  auto json = std::make_shared<bool>(false);
  auto* list = sub->add_subcommand("list", "List the targets");
  list->add_flag("--json", *json, "print JSON");
  list->callback([json] {
    nlohmann::json out = nlohmann::json::array();
    Table table;
    table.add_column("target");
    table.add_column("kind");
    table.add_column("description");
    for (const auto& name : target_names()) {
      if (name == "host") {
        out.push_back({{"name", "host"}, {"kind", "cpu"}, {"description", "this machine, measured"}});
        table.add_row({"host", "cpu", "this machine, measured (adze target calibrate host; cached)"});
        continue;
      }
      const Target t = load_target(name);
      out.push_back({{"name", t.name}, {"kind", t.kind}, {"description", t.description}});
      table.add_row({t.name, t.kind, t.description});
    }
    if (*json)
      std::cout << out.dump(2) << "\n";
    else
      table.print(std::cout);
  });
  auto name = std::make_shared<std::string>();
  auto* show_cmd = sub->add_subcommand("show", "Print a target's figures with their sources");
  show_cmd->add_option("target", *name, "a built-in name, host, or a path to a target JSON file")->required();
  show_cmd->add_flag("--json", *json, "print the target as JSON");
  show_cmd->callback([name, json] {
    const Target t = load_target(*name);
    if (*json)
      std::cout << to_json(t).dump(2) << "\n";
    else
      show(t);
  });
  auto* calibrate = sub->add_subcommand(
      "calibrate", "Measure this machine and cache it as the target 'host' (and the measured cost model's table)");
  calibrate->add_option("target", *name, "host (the only target adze can measure)")->required();
  calibrate->add_flag("--json", *json, "print the measured target as JSON");
  calibrate->callback([name, json] {
    if (*name != "host")
      throw Error(ErrorKind::kInvalidArgument, "adze can only measure 'host' (this machine), not '" + *name + "'");
    const Target t = calibrate_and_cache_host(show_progress(*json));
    measure_and_cache_host_lut(show_progress(*json));  // the measured cost model's table
    clear_host_timings();                              // and its other timings, measured again when asked
    if (*json)
      std::cout << to_json(t).dump(2) << "\n";
    else
      show(t);
  });
}

}  // namespace adze::cli
