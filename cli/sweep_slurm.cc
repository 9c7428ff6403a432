// adze sweep slurm and collect: a Slurm array over a sweep's pending runs, and merging what its tasks left.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/sweep_common.h"
#include "core/error.h"
#include "core/files.h"
#include "sweep/local_executor.h"

namespace adze::cli {

// A Slurm array script over the pending runs: task i runs the i-th id of DIR/slurm/ids.txt.
void run_slurm(const SweepOptions& o) {
  if (o.cpus_per_task < 1) throw Error(ErrorKind::kInvalidArgument, "--cpus-per-task must be at least 1");
  if (o.max_parallel < 0) throw Error(ErrorKind::kInvalidArgument, "--max-parallel must be 0 (no limit) or more");
  int64_t runs = 0, added = 0;
  SweepStore store = open_store_with_runs(o, &runs, &added);
  std::vector<std::string> pending;
  for (const StoredRun& r : store.runs())
    if (r.state == "pending") pending.push_back(r.id);
  if (pending.empty()) {
    std::cout << "no pending runs: nothing to submit\n";
    return;
  }
  const std::string dir = std::filesystem::absolute(o.out).string(), slurm = dir + "/slurm";
  std::filesystem::create_directories(slurm);
  std::string ids;
  for (const std::string& id : pending) ids += id + "\n";
  write_file_atomically(slurm + "/ids.txt", ids);
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string script = "#!/bin/bash\n# Written by adze sweep slurm: one array task per pending run of " + dir +
                       ".\n# Submit: sbatch " + slurm + "/sweep.sbatch   Then: adze sweep collect " + dir + "\n";
  script += "#SBATCH --job-name=adze-sweep\n";
  script += "#SBATCH --array=1-" + std::to_string(pending.size()) +
            (o.max_parallel > 0 ? "%" + std::to_string(o.max_parallel) : "") + "\n";
  script += "#SBATCH --output=" + slurm + "/task-%a.log\n";
  script += "#SBATCH --cpus-per-task=" + std::to_string(o.cpus_per_task) + "\n";
  if (!o.time.empty()) script += "#SBATCH --time=" + o.time + "\n";
  if (!o.partition.empty()) script += "#SBATCH --partition=" + o.partition + "\n";
  script += "set -euo pipefail\n";
  script += "id=$(sed -n \"${SLURM_ARRAY_TASK_ID}p\" " + shell_quoted(slurm + "/ids.txt") + ")\n";
  script += "exec " + shell_quoted(exe) + " -q --threads \"${SLURM_CPUS_PER_TASK:-1}\" sweep run-one " +
            shell_quoted(dir) + " \"$id\"\n";
  write_file_atomically(slurm + "/sweep.sbatch", script);
  std::filesystem::permissions(slurm + "/sweep.sbatch", std::filesystem::perms::owner_exec,
                               std::filesystem::perm_options::add);
  std::cout << "wrote " << slurm << "/sweep.sbatch: " << pending.size() << " array task(s), one per pending run\n"
            << "submit it with: sbatch " << slurm << "/sweep.sbatch\n"
            << "then merge the results: adze sweep collect " << dir << "\n";
}

// Merges what runs executed elsewhere left in their directories (result.json, error.txt) into the store.
void run_collect(const SweepOptions& o) {
  SweepStore store = SweepStore::open(o.out, false);
  int64_t done = 0, failed = 0;
  for (const StoredRun& r : store.runs()) {
    if (r.state == "done" || r.state == "failed") continue;
    const std::string dir = run_directory(o.out, r.id);
    if (std::filesystem::exists(dir + "/result.json")) {
      store.finish(r.id, nlohmann::ordered_json::parse(read_file_text(dir + "/result.json")), 0);
      ++done;
    } else if (std::filesystem::exists(dir + "/error.txt")) {
      std::string error = read_file_text(dir + "/error.txt");
      while (!error.empty() && error.back() == '\n') error.pop_back();
      store.fail(r.id, error, 0, false);
      ++failed;
    }
  }
  if (!o.json) std::cout << "collected " << done << " result(s) and " << failed << " failure(s)\n";
  const auto counts = store.counts();
  if (o.json)
    std::cout << nlohmann::ordered_json{{"collected", done}, {"failed", failed}, {"counts", counts}}.dump(2) << "\n";
  else
    print_counts(counts, o.out);
}

}  // namespace adze::cli
