// A sweep file (JSON, or YAML by its extension): the axes a batch of runs varies over, how they combine, and
// what each run does after compressing. Parsing checks the file's shape and every value's type; sweep_runs.h
// then checks that each value names something that loads (models, plans, pipelines, targets, data).
//
//   {"kind":    "compress",                            // or "search"
//    "grid":    {"model": ["fmnist-cnn"], "plan": ["configs/plans/int8.json", "configs/plans/int4.json"],
//                "pipeline": ["configs/pipelines/ptq.json"], "seed": [0, 1], "data": ["fmnist"]},
//    "zip":     [{"plan": [...], "pipeline": [...]}],   // lists of one length, taken side by side
//    "exclude": [{"model": "fmnist-vit", "plan": "configs/plans/int4.json"}],
//    "options": {"limit": 2000, "train_limit": 0, "batch_size": 0, "split": "test", "train_split": "train"},
//    "export":  ["packed", "onnx"], "verify": true,
//    "bench":   {"runs": 50, "warmup": 5, "threads": 1, "activations": "dynamic"}}   // or true
//
// The runs are the grid's product, times each zip group's rows, less those that match every field of an
// `exclude` entry. Axes: model (a path or reference name, or {"path": ..., "input_shape": "1x3x16x16",
// "input_dtype": "float32"}), plan, pipeline, target (a name or path; the run reports the plan's cost on it),
// budget (kind search: "size=200KB", as adze search --budget), seed (an integer >= 0, default 0) and data (a
// data SPEC). Relative paths are read from the directory adze runs in.
//
// A compress run compresses its model by its plan and pipeline. A search run (kind search; axes model,
// pipeline, target, budget and data, no plan) first searches a plan within its budget on its target, as
// adze search does with the file's "search" settings (algo, algo_options, bits, nm, act_bits, decompose, split,
// limit, probes, cost_model, batch, confirm, time_budget, exporter), then compresses the model by that plan and
// its pipeline. Either then exports, verifies and benches as the file says.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace adze {

/// The axes a sweep varies, in the order runs list them.
const std::vector<std::string>& sweep_axes();

struct SweepFile {
  std::string path;                             ///< where it was read from, for messages
  std::string kind = "compress";                ///< compress (each run's plan is given) or search (found)
  nlohmann::ordered_json grid;                  ///< axis -> values
  std::vector<nlohmann::ordered_json> zip;      ///< groups: axis -> values, every list of one length
  std::vector<nlohmann::ordered_json> exclude;  ///< partial assignments: axis -> value
  nlohmann::ordered_json options;               ///< split, limit, train_split, train_limit, batch_size
  std::vector<std::string> exports;             ///< formats each run exports to
  bool verify = false;                          ///< verify each export against the compressed model
  nlohmann::ordered_json search;                ///< kind search: the search's settings, defaults filled in
  nlohmann::ordered_json bench;                 ///< null, or how each export is timed against the model
  /// The file as parsed, defaults filled in: what a store records to recognise its sweep.
  nlohmann::ordered_json canonical() const;
};

/// One run of a sweep: its position in the expansion and its value on every axis (axes it does not set
/// absent, seed 0).
struct SweepRun {
  int64_t index = 0;
  nlohmann::ordered_json axes;
};

/// Reads and checks a sweep file: Error(kIo) when unreadable, Error(kInvalidConfig) naming the file and the
/// axis, field or value otherwise (an unknown axis, an empty list, a value of the wrong type, a file that is
/// neither JSON nor YAML).
SweepFile load_sweep_file(const std::string& path);
/// The same from a parsed document; `where` names it in messages.
SweepFile parse_sweep(const nlohmann::ordered_json& doc, const std::string& where);

/// The runs, in order: grid product (axes in sweep_axes() order, the last varying fastest), times the zip
/// groups' rows, less the excluded. Error(kInvalidConfig) when no run is left.
std::vector<SweepRun> expand_sweep(const SweepFile& sweep);

/// "model=fmnist-cnn plan=int8.json seed=1": a run's axes in one line, for tables and messages.
std::string describe_axes(const nlohmann::ordered_json& axes);

}  // namespace adze
