// The adze subcommands. Each is a pair in its own file: setup_x registers options and a callback on the app;
// the callback throws adze::Error for bad input, which main() turns into one line on stderr and exit code 2.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "compress/data/dataset.h"
#include "compress/model.h"

namespace adze::cli {

/// Options every subcommand shares (set on the main app).
struct GlobalOptions {
  int threads = 0;  ///< 0: one per hardware thread
  bool quiet = false;
  bool verbose = false;
};
GlobalOptions& global_options();

void setup_inspect(CLI::App& app);
void setup_eval(CLI::App& app);
void setup_reference(CLI::App& app);
void setup_passes(CLI::App& app);
void setup_compress(CLI::App& app);
void setup_compare(CLI::App& app);
void setup_export(CLI::App& app);
void setup_verify(CLI::App& app);
void setup_bench(CLI::App& app);
void setup_target(CLI::App& app);
void setup_cost(CLI::App& app);
void setup_sensitivity(CLI::App& app);
void setup_search(CLI::App& app);

/// Thrown by a command whose check did not pass after it printed why (adze verify): exit code 1, no message.
struct CheckFailed : std::exception {};
/// Thrown by adze search when no plan meets the budget, after it wrote the closest one: exit code 3.
struct Unsatisfiable : std::exception {};

/// A model argument: a TorchScript path, or the name of a trained reference model in the cache.
std::string resolve_model_path(const std::string& model);
/// The sample input: --input-shape (with --input-dtype) when given, else the card beside the model.
InputSpec resolve_input_spec(const std::string& model_path, const std::string& shape_flag, const std::string& dtype_flag);
/// The data a model is evaluated on: text cut into windows of the model's sequence length; the per-sample
/// shape checked against the model's input (Error naming both); `input.shape[0]` set to the evaluation batch
/// (`batch_size`, else 256 images or 32 windows, at most the data size).
Dataset load_data_for_model(const std::string& model_path, InputSpec& input, const std::string& spec,
                            const std::string& split, int64_t limit, int64_t batch_size);
/// What a measurement on (model file, input, data) depends on, for cache keys: the model file's content hash,
/// the input spec, the data spec, split and sample count.
std::string data_identity(const std::string& model_path, const InputSpec& input, const std::string& spec,
                          const std::string& split, int64_t samples);
/// Progress bars are drawn unless --quiet or --json.
bool show_progress(bool json);

}  // namespace adze::cli
