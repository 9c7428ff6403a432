// The adze subcommands. Each is a pair in its own file: setup_x registers options and a callback on the app;
// the callback throws adze::Error for bad input, which main() turns into one line on stderr and exit code 2.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "data/model_data.h"
#include "examples/reference/reference.h"

namespace adze::cli {

/// Options every subcommand shares (set on the main app).
struct GlobalOptions {
  int threads = 0;  ///< 0: one per usable CPU (core/process_settings.h)
  bool quiet = false;
  bool verbose = false;
};
GlobalOptions& global_options();

/// The most compute threads a command takes (--threads, bench's --thread-counts): more is a typo, and libgomp
/// took 17 s to start 1024 threads on 2 CPUs and did not finish starting 5000 within a minute.
constexpr int kMaxThreads = 1024;

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
void setup_sweep(CLI::App& app);

/// Thrown by a command whose check did not pass after it printed why (adze verify): exit code 1, no message.
struct CheckFailed : std::exception {};
/// Thrown by adze search when no plan meets the budget, after it wrote the closest one: exit code 3.
struct Unsatisfiable : std::exception {};

/// Inside a catch block: prints the exception being handled as adze prints errors (one line on stderr) and
/// returns the exit code it means: 2 bad input, 1 an internal error or CheckFailed, 3 Unsatisfiable (the last
/// two print nothing: their command has said why).
int report_current_exception();

using reference::resolve_model_path;
/// Progress bars are drawn unless --quiet or --json.
bool show_progress(bool json);

}  // namespace adze::cli
