// adze sweep as a user runs it: a sweep killed at random points resumes to the uninterrupted sweep's results,
// runs that fail are recorded and the sweep goes on, bad input changes nothing; and under mpirun, the sweep's
// ranks and adze compress --data-parallel's.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "core/files.h"
#include "tests/cli_run.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::adze;
using testing::CliRun;
using testing::config;
using testing::count_lines;
using testing::fixture;
using testing::TempDir;

// 3 plans × 2 pipelines × 2 seeds of the traced CNN fixture, exported packed: 12 runs (the third plan, 3-bit
// weights per tensor, written beside the sweep file).
void write_sweep(const std::string& path) {
  const std::string w3 = std::filesystem::path(path).parent_path() / "w3.json";
  std::ofstream(w3) << R"({"defaults": {"weight_bits": 3, "granularity": "tensor"}})";
  std::ofstream(path) << "grid:\n  model:\n    - {path: " << fixture("cnn_bn_traced.pt")
                      << ", input_shape: 1x3x16x16}\n  plan: [" << config("plans/int8.json") << ", "
                      << config("plans/int4.json") << ", " << w3 << "]\n  pipeline: [" << config("pipelines/ptq.json")
                      << ", " << config("pipelines/ptq-activations.json")
                      << "]\n  seed: [0, 1]\n  data: [\"tensors:" << fixture("tensors_small.pt")
                      << "\"]\nexport: [packed]\n";
}

// Each run's result.json and packed file, by run id.
std::map<std::string, std::string> results(const std::string& out) {
  std::map<std::string, std::string> r;
  for (const auto& d : std::filesystem::directory_iterator(out + "/runs")) {
    const std::string id = d.path().filename().string();
    if (std::filesystem::exists(d.path() / "result.json"))
      r[id + "/result.json"] = read_file_text((d.path() / "result.json").string());
    if (std::filesystem::exists(d.path() / "model.adze"))
      r[id + "/model.adze"] = read_file_text((d.path() / "model.adze").string());
  }
  return r;
}

// The crash-safety bar: killed at 10 random points and resumed each time, the sweep ends with 12 runs done,
// none lost, none finished twice, and every result and export byte-identical to an uninterrupted sweep's.
// The uninterrupted sweep runs each run in a fresh process, the killed ones in a worker kept between runs: a
// run gives the same bytes either way.
TEST(SweepCli, KilledAtRandomPointsResumesToTheSameResults) {
  TempDir tmp;
  const std::string file = tmp.file("sweep.yaml");
  write_sweep(file);
  CliRun whole = adze("-q sweep run " + file + " --out " + tmp.file("whole") + " --fresh-processes --json");
  ASSERT_EQ(whole.code, 0) << whole.err;
  EXPECT_EQ(nlohmann::json::parse(whole.out)["counts"]["done"], 12);

  std::mt19937 rng(20261130);
  std::uniform_int_distribution<int> delay(300, 2500);
  for (int kill = 0; kill < 10; ++kill)
    testing::run_and_kill({"-q", "sweep", "run", file, "--out", tmp.file("killed")}, delay(rng),
                          tmp.file("killed.log"));
  CliRun last = adze("-q sweep run " + file + " --out " + tmp.file("killed") + " --json");
  ASSERT_EQ(last.code, 0) << last.err;
  const auto status = nlohmann::json::parse(adze("sweep status " + tmp.file("killed") + " --json").out);
  EXPECT_EQ(status["counts"]["done"], 12);
  EXPECT_EQ(status["counts"]["pending"], 0);
  EXPECT_EQ(status["counts"]["running"], 0);
  EXPECT_EQ(status["counts"]["failed"], 0);
  int finished = 0;
  for (const auto& d : std::filesystem::directory_iterator(tmp.file("killed") + "/runs")) {
    const std::string log = read_file_text((d.path() / "log.txt").string());
    const std::string line = "run " + d.path().filename().string() + " finished";
    int times = 0;
    for (std::size_t at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++times;
    EXPECT_LE(times, 1) << d.path();  // a result a killed sweep left is adopted, not run again
    finished += times;
  }
  EXPECT_LE(finished, 12);
  EXPECT_GE(finished, 10);  // at most a killed sweep or two leave a result behind for the next to adopt
  const auto want = results(tmp.file("whole")), got = results(tmp.file("killed"));
  EXPECT_EQ(want.size(), 24u);
  EXPECT_TRUE(want == got) << "results differ from the uninterrupted sweep's";
}

TEST(SweepCli, FailedRunsAreRecordedAndTheSweepGoesOn) {
  TempDir tmp;
  write_sweep(tmp.file("sweep.yaml"));
  CliRun r = adze("-q sweep run " + tmp.file("sweep.yaml") + " --out " + tmp.file("out") +
                  " --timeout 0.001 --retries 1 --json");
  EXPECT_EQ(r.code, 1) << r.err;
  const auto status = nlohmann::json::parse(adze("sweep status " + tmp.file("out") + " --json").out);
  EXPECT_EQ(status["counts"]["failed"], 12);
  EXPECT_EQ(status["failed"][0]["error"], "timed out after 0.001 s");
  EXPECT_EQ(nlohmann::json::parse(r.out)["attempts"], 24);  // each run tried twice
}

// The Slurm path without a cluster: the script's task command, run for two array indices, leaves two results
// that collect merges into the store; the script then covers only what is still pending.
TEST(SweepCli, SlurmArrayTasksRunOneRunEachAndCollectMergesThem) {
  TempDir tmp;
  write_sweep(tmp.file("sweep.yaml"));
  const std::string out = tmp.file("out");
  CliRun r = adze("-q sweep slurm " + tmp.file("sweep.yaml") + " --out " + out + " --time 00:10:00 --max-parallel 4");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string script = read_file_text(out + "/slurm/sweep.sbatch");
  EXPECT_NE(script.find("#SBATCH --array=1-12%4"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --time=00:10:00"), std::string::npos) << script;
  for (int task : {1, 7}) {
    const std::string cmd = "SLURM_ARRAY_TASK_ID=" + std::to_string(task) + " bash " + out + "/slurm/sweep.sbatch >" +
                            tmp.file("task.log") + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << read_file_text(tmp.file("task.log"));
  }
  r = adze("sweep collect " + out + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto collected = nlohmann::json::parse(r.out);
  EXPECT_EQ(collected["collected"], 2);
  EXPECT_EQ(collected["counts"]["done"], 2);
  EXPECT_EQ(collected["counts"]["pending"], 10);
  const std::vector<std::string> ids = [&] {
    std::vector<std::string> v;
    std::istringstream in(read_file_text(out + "/slurm/ids.txt"));
    for (std::string id; std::getline(in, id);) v.push_back(id);
    return v;
  }();
  EXPECT_TRUE(std::filesystem::exists(out + "/runs/" + ids.at(0) + "/result.json"));
  EXPECT_TRUE(std::filesystem::exists(out + "/runs/" + ids.at(6) + "/model.adze"));
  ASSERT_EQ(adze("-q sweep slurm " + tmp.file("sweep.yaml") + " --out " + out).code, 0);
  EXPECT_NE(read_file_text(out + "/slurm/sweep.sbatch").find("#SBATCH --array=1-10\n"), std::string::npos);
}

// mpirun as root needs these; --oversubscribe lets 3 ranks share this machine's cores. Under the sanitizers
// (scripts/test.sh --sanitize) the ranks check for everything but leaks: Open MPI unloads its components at
// exit, so what they keep until then is reported from unnamed modules that no suppression can match.
std::string mpirun(int ranks, const std::string& args, const std::string& mpirun_flags = "") {
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string ranks_asan = asan ? " ASAN_OPTIONS=" + std::string(asan) + ":detect_leaks=0" : "";
  return "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1" + ranks_asan + " mpirun --oversubscribe " +
         mpirun_flags + " -n " + std::to_string(ranks) + " " + testing::cli_path() + " " + args;
}

// Under mpirun, rank 0 hands the runs out to every rank and alone writes the store: the results are the local
// sweep's, byte for byte. One rank works too, and says so.
TEST(SweepCli, MpiRanksShareTheRunsAndGiveTheSameResults) {
  TempDir tmp;
  const std::string file = tmp.file("sweep.yaml");
  write_sweep(file);
  ASSERT_EQ(adze("-q sweep run " + file + " --out " + tmp.file("local")).code, 0);
  const std::string three = mpirun(3, "-q sweep run " + file + " --out " + tmp.file("mpi") + " --mpi --json");
  ASSERT_EQ(std::system((three + " >" + tmp.file("out.json") + " 2>" + tmp.file("err")).c_str()), 0)
      << read_file_text(tmp.file("err"));
  const auto out = nlohmann::json::parse(read_file_text(tmp.file("out.json")));
  EXPECT_EQ(out["counts"]["done"], 12);
  EXPECT_EQ(out["attempts"], 12);
  EXPECT_TRUE(results(tmp.file("local")) == results(tmp.file("mpi"))) << "results differ from the local sweep's";
  const std::string one = mpirun(1, "-q sweep run " + file + " --out " + tmp.file("one") + " --mpi");
  ASSERT_EQ(std::system((one + " >" + tmp.file("one.txt") + " 2>&1").c_str()), 0)
      << read_file_text(tmp.file("one.txt"));
  EXPECT_NE(read_file_text(tmp.file("one.txt")).find("one rank: rank 0 runs every run itself"), std::string::npos);
  EXPECT_TRUE(results(tmp.file("local")) == results(tmp.file("one")));
  // Bad input under mpirun: rank 0 says what is wrong in one line, the other ranks end cleanly, nothing is made.
  std::ofstream(tmp.file("typo.json")) << R"({"grid": {"modle": ["x.pt"]}})";
  const std::string bad = mpirun(3, "-q sweep run " + tmp.file("typo.json") + " --out " + tmp.file("bad") + " --mpi");
  const int status = std::system((bad + " >/dev/null 2>" + tmp.file("bad.err")).c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(read_file_text(tmp.file("bad.err")).find("adze: error: invalid sweep"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(tmp.file("bad")));
}

// adze compress --data-parallel under mpirun -n 2: Gloo ranks each fine-tune on half of every batch; rank 0
// alone writes --out, and its model scores as the one-process run's does. Ranks that average over MPI instead
// compute the same numbers as Gloo's (a sum of two is one addition either way): the same model, byte for byte.
TEST(SweepCli, DataParallelCompressUnderMpirunMatchesOneProcess) {
  TempDir tmp;
  std::ofstream(tmp.file("ft.json")) << R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights",
      {"name": "finetune.ste", "options": {"steps": 20, "lr": 1e-3, "batch_size": 8, "distill": 0.5}}]})";
  const std::string args = "-q --threads 1 compress " + fixture("cnn_bn_traced.pt") +
                           " --input-shape 1x3x16x16 --plan " + config("plans/int4.json") + " --pipeline " +
                           tmp.file("ft.json") + " --data tensors:" + fixture("tensors_small.pt") + " --json --out ";
  CliRun one = adze(args + tmp.file("one"));
  ASSERT_EQ(one.code, 0) << one.err;
  const std::string two = "ADZE_STORE=" + tmp.file("store") + " " +
                          mpirun(2, args + tmp.file("two") + " --data-parallel", "-x ADZE_STORE") + " >" +
                          tmp.file("two.json") + " 2>" + tmp.file("two.err");
  ASSERT_EQ(std::system(two.c_str()), 0) << read_file_text(tmp.file("two.err"));
  const auto a = nlohmann::json::parse(one.out)["metrics"]["after"];
  const auto b = nlohmann::json::parse(read_file_text(tmp.file("two.json")))["metrics"]["after"];  // rank 0's
  EXPECT_NEAR(a["cross_entropy"].get<double>(), b["cross_entropy"].get<double>(), 1e-5);
  EXPECT_TRUE(std::filesystem::exists(tmp.file("two/model.pt")));
  const std::string mpi = mpirun(2, args + tmp.file("mpi") + " --data-parallel --data-parallel-backend mpi") + " >" +
                          tmp.file("mpi.json") + " 2>" + tmp.file("mpi.err");
  ASSERT_EQ(std::system(mpi.c_str()), 0) << read_file_text(tmp.file("mpi.err"));
  const auto c = nlohmann::json::parse(read_file_text(tmp.file("mpi.json")))["metrics"]["after"];
  EXPECT_EQ(c, b);
  EXPECT_EQ(read_file_text(tmp.file("mpi/encodings.pt")), read_file_text(tmp.file("two/encodings.pt")));
  CliRun alone = adze(args + tmp.file("alone") + " --data-parallel");
  EXPECT_EQ(alone.code, 2);
  EXPECT_NE(alone.err.find("--data-parallel needs ranks"), std::string::npos) << alone.err;
  // Bad input: MPI outside mpirun, a backend without --data-parallel, an unknown backend. Nothing is written.
  CliRun no_ranks = adze(args + tmp.file("x") + " --data-parallel --data-parallel-backend mpi");
  EXPECT_EQ(no_ranks.code, 2);
  EXPECT_NE(no_ranks.err.find("needs ranks started by mpirun"), std::string::npos) << no_ranks.err;
  CliRun no_flag = adze(args + tmp.file("x") + " --data-parallel-backend mpi");
  EXPECT_EQ(no_flag.code, 2);
  EXPECT_NE(no_flag.err.find("--data-parallel-backend mpi needs --data-parallel"), std::string::npos) << no_flag.err;
  CliRun unknown = adze(args + tmp.file("x") + " --data-parallel --data-parallel-backend nccl");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("nccl"), std::string::npos) << unknown.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("x")));
}

// A search sweep: each run searches a plan within its budget, compresses by it, exports, verifies, and times
// the export against the model side by side; the report says whether each budget was met. 3 bits per weight
// is out of reach for the fixture's small layers (their scales alone cost a bit per weight): that run's closest
// plan is compressed and reported as over its budget.
TEST(SweepCli, SearchRunsMeetTheirBudgetsThenExportVerifyAndBench) {
  TempDir tmp;
  std::ofstream(tmp.file("search.yaml"))
      << "kind: search\ngrid:\n  model:\n    - {path: " << fixture("cnn_bn_traced.pt")
      << ", input_shape: 1x3x16x16}\n  pipeline: [" << config("pipelines/ptq.json")
      << "]\n  target: [cortex-m7]\n  budget: [\"bits=3\", \"bits=6\"]\n  data: [\"tensors:"
      << fixture("tensors_small.pt")
      << "\"]\nsearch: {limit: 16, probes: 0, bits: [2, 4, 8]}\nexport: [packed]\nverify: true\n"
         "bench: {runs: 3, warmup: 1}\n";
  CliRun r = adze("-q sweep run " + tmp.file("search.yaml") + " --out " + tmp.file("out") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  int checked = 0;
  for (const auto& d : std::filesystem::directory_iterator(tmp.file("out/runs"))) {
    const auto result = nlohmann::json::parse(read_file_text((d.path() / "result.json").string()));
    const double cost = result["search"]["cost"].get<double>();
    if (result["axes"]["budget"] == "bits=3") {
      EXPECT_FALSE(result["search"]["satisfiable"]);
      EXPECT_GT(cost, 3);
    } else {
      EXPECT_TRUE(result["search"]["satisfiable"]);
      EXPECT_LE(cost, 6);
    }
    EXPECT_TRUE(std::filesystem::exists(d.path() / "search/plan.json"));
    EXPECT_TRUE(result["exports"]["packed"]["verify"]["pass"]) << result.dump();
    ASSERT_EQ(result["bench"]["rows"].size(), 2u);
    EXPECT_EQ(result["bench"]["rows"][1]["name"], "packed");
    EXPECT_GT(result["bench"]["rows"][1]["median_seconds"].get<double>(), 0);
    EXPECT_EQ(result["bench"]["threads"], 1);
    ++checked;
  }
  EXPECT_EQ(checked, 2);
  r = adze("sweep report " + tmp.file("out") + " --md");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| budget met |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| done | NO |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| done | yes |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| speed-up |"), std::string::npos) << r.out;
  // Run again: nothing is new, nothing runs.
  r = adze("-q sweep run " + tmp.file("search.yaml") + " --out " + tmp.file("out") + " --json");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["new"], 0);
}

TEST(SweepCli, BadInputIsOneLineExit2AndLeavesTheStoreAlone) {
  TempDir tmp;
  write_sweep(tmp.file("sweep.yaml"));
  std::ofstream(tmp.file("typo.json")) << R"({"grid": {"modle": ["x.pt"]}})";
  CliRun r = adze("sweep run " + tmp.file("typo.json") + " --out " + tmp.file("out"));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("unknown axis 'modle'"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("out")));
  // A store made by another sweep file is refused, naming the axis that differs, unless --extend.
  std::string text = read_file_text(tmp.file("sweep.yaml"));
  std::ofstream(tmp.file("one.yaml")) << text.replace(text.find("seed: [0, 1]"), 12, "seed: [0]");
  ASSERT_EQ(adze("-q sweep run " + tmp.file("one.yaml") + " --out " + tmp.file("out")).code, 0);
  const std::string before = read_file_text(tmp.file("out/sweep.db"));
  r = adze("-q sweep run " + tmp.file("sweep.yaml") + " --out " + tmp.file("out"));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("grid axis 'seed' differs"), std::string::npos) << r.err;
  EXPECT_EQ(read_file_text(tmp.file("out/sweep.db")), before);
  r = adze("-q sweep run " + tmp.file("sweep.yaml") + " --out " + tmp.file("out") + " --extend --json");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["new"], 6);  // the seed-0 runs were done already
  // A corrupt store is refused by name.
  std::ofstream(tmp.file("out/sweep.db"), std::ios::trunc) << std::string(8192, 'z');
  std::filesystem::remove(tmp.file("out/sweep.db-wal"));
  r = adze("sweep status " + tmp.file("out"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("corrupt or not a sweep store"), std::string::npos) << r.err;
  // An empty --out is taken (a sweep killed while making its store leaves one); a directory holding other
  // things but no store is refused.
  std::filesystem::create_directories(tmp.file("empty"));
  EXPECT_EQ(adze("-q sweep slurm " + tmp.file("sweep.yaml") + " --out " + tmp.file("empty")).code, 0);
  std::filesystem::create_directories(tmp.file("other"));
  std::ofstream(tmp.file("other/notes.txt")) << "mine";
  r = adze("-q sweep slurm " + tmp.file("sweep.yaml") + " --out " + tmp.file("other"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("exists and holds no sweep store"), std::string::npos) << r.err;
  // Slurm flags out of range: refused before anything is written.
  r = adze("sweep slurm " + tmp.file("sweep.yaml") + " --out " + tmp.file("slurm") + " --cpus-per-task 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--cpus-per-task must be at least 1"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("slurm")));
  // sweep plan lists the runs and runs nothing.
  r = adze("sweep plan " + tmp.file("sweep.yaml") + " --json");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["runs"].size(), 12u);
}

}  // namespace
}  // namespace adze
