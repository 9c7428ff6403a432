// adze: compress trained networks for the hardware they run on. Exit codes: 0 success, 1 internal error,
// 2 bad input or usage (one line on stderr naming what and where).
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <csignal>
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "core/process_settings.h"
#include "model/compute_threads.h"

namespace {

// libtorch warnings (e.g. from the tracer) are noise for a CLI user; --verbose shows them.
class QuietWarningHandler : public c10::WarningHandler {
 public:
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    if (adze::cli::global_options().verbose) std::cerr << "warning: " << msg << "\n";
  }
};

int run(int argc, char** argv) {
  CLI::App app{"adze: N:M sparsity, mixed-precision quantization and search for trained networks", "adze"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may also follow the subcommand: adze eval ... --quiet
  auto& g = adze::cli::global_options();
  CLI::Option* threads =
      app.add_option("--threads", g.threads,
                     "compute threads: ATen, OpenMP and the BLAS pool (default: one per CPU this process may use)");
  app.add_flag("-q,--quiet", g.quiet, "no progress bars");
  app.add_flag("-v,--verbose", g.verbose, "show libtorch warnings");
  app.footer("Run 'adze COMMAND --help' for a command's options and examples.");
  adze::cli::setup_inspect(app);
  adze::cli::setup_eval(app);
  adze::cli::setup_reference(app);
  adze::cli::setup_compress(app);
  adze::cli::setup_compare(app);
  adze::cli::setup_export(app);
  adze::cli::setup_verify(app);
  adze::cli::setup_bench(app);
  adze::cli::setup_target(app);
  adze::cli::setup_cost(app);
  adze::cli::setup_sensitivity(app);
  adze::cli::setup_search(app);
  adze::cli::setup_sweep(app);
  adze::cli::setup_passes(app);
  app.parse_complete_callback([&g, threads] {
    // Runs before the subcommand's callback. Only an omitted --threads means "one per usable CPU": an
    // explicit 0 or negative count is a mistake, not a request for the default.
    if (threads->count() > 0 && g.threads < 1)
      throw adze::Error(adze::ErrorKind::kInvalidArgument,
                        "--threads must be at least 1 (got " + std::to_string(g.threads) + ")");
    if (g.threads > adze::cli::kMaxThreads)
      throw adze::Error(adze::ErrorKind::kInvalidArgument, "--threads must be at most " +
                                                               std::to_string(adze::cli::kMaxThreads) + " (got " +
                                                               std::to_string(g.threads) + ")");
    // The CPUs this process may use, not the machine's: under taskset, a cpuset or mpirun's binding, threads
    // beyond them share a CPU and wait on each other (ResNet-18 in the packed runtime, two threads on one CPU:
    // 40 ms against 0.75 ms on two, docs/results/runtime-two-threads-2026-12-02.md).
    const int cpus = static_cast<int>(adze::usable_cpus().size());
    const int n = threads->count() > 0 ? g.threads : cpus;
    if (n > cpus)
      std::cerr << "adze: warning: --threads " << n << " on " << cpus << " usable CPU" << (cpus == 1 ? "" : "s")
                << " (this process's CPU affinity): threads that share a CPU wait on each other, often many times "
                   "slower\n";
    adze::set_compute_threads(n);  // ATen's, OpenMP's and the BLAS's own pool (else spinning on the other cores)
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "adze: error: " << e.what() << " (see adze --help)\n";
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG, which adze reports and cleans up after,
  // instead of the signal killing it halfway through a file.
  std::signal(SIGXFSZ, SIG_IGN);
  // Tensors made and freed every training step reuse memory instead of faulting it in anew.
  adze::reuse_freed_memory();
  QuietWarningHandler handler;
  c10::Warning::set_warning_handler(&handler);
  try {
    return run(argc, argv);
  } catch (...) {
    return adze::cli::report_current_exception();
  }
}
