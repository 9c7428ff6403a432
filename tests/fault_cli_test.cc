// Faults a user's machine deals adze, as a user meets them: a kill -9 at a random point of adze compress,
// export or sweep leaves the complete output or nothing (never a half-written file a later command reads);
// a full disk (here a file-size limit, ulimit -f) and unreadable inputs give exit 2, one line, and leave
// nothing behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/files.h"
#include "tests/cli_run.h"
#include "tests/test_util.h"

namespace adze {
namespace {

namespace fs = std::filesystem;
using testing::adze;
using testing::CliRun;
using testing::config;
using testing::count_lines;
using testing::fixture;
using testing::TempDir;

std::vector<std::string> compress_args(const std::string& out) {
  return {"-q",
          "compress",
          fixture("cnn_bn_traced.pt"),
          "--input-shape",
          "1x3x16x16",
          "--plan",
          config("plans/int8.json"),
          "--pipeline",
          config("pipelines/ptq.json"),
          "--data",
          "tensors:" + fixture("tensors_small.pt"),
          "--limit",
          "16",
          "--out",
          out};
}

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + shell_quoted(a);
  return s;
}

// Every regular file under `path` (or `path` itself), relative path -> bytes. Left out: reports (they hold
// the pass times) and a sweep run's log (it holds every attempt's output).
std::map<std::string, std::string> contents(const std::string& path) {
  std::map<std::string, std::string> out;
  if (fs::is_regular_file(path)) {
    out[""] = read_file_text(path);
    return out;
  }
  for (const auto& e : fs::recursive_directory_iterator(path)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name != "report.json" && name != "report.md" && name != "log.txt")
      out[fs::relative(e.path(), path).string()] = read_file_text(e.path().string());
  }
  return out;
}

// The files that differ between two contents(), or are in one only: "" when none.
std::string differing(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  std::string out;
  for (const auto& [name, bytes] : a)
    if (!b.count(name) || b.at(name) != bytes) out += " " + (name.empty() ? "the file" : name);
  for (const auto& [name, bytes] : b)
    if (!a.count(name)) out += " " + name + " (extra)";
  return out;
}

// Hidden temporaries (".NAME.tmp-PID") in `dir`.
int litter(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    n += e.path().filename().string().find(".tmp-") != std::string::npos;
  return n;
}

// 50 kills at random points, spread over compress, the four exports and a sweep. After each, the output is
// either absent or equal, byte for byte, to the uninterrupted command's (compress and export are
// deterministic); a killed sweep resumes to the uninterrupted sweep's result. A command that ends before its
// kill must have written its whole output.
TEST(Faults, KilledAtRandomPointsLeaveTheWholeOutputOrNothing) {
  TempDir tmp;
  ASSERT_EQ(adze(joined(compress_args(tmp.file("base")))).code, 0);
  std::ofstream(tmp.file("sweep.yaml")) << "grid:\n  model:\n    - {path: " << fixture("cnn_bn_traced.pt")
                                        << ", input_shape: 1x3x16x16}\n  plan: [" << config("plans/int8.json")
                                        << "]\n  pipeline: [" << config("pipelines/ptq.json")
                                        << "]\n  data: [\"tensors:" << fixture("tensors_small.pt")
                                        << "\"]\nexport: [packed]\n";
  struct Kind {
    std::string name;
    std::function<std::vector<std::string>(const std::string&)> args;
  };
  const auto export_to = [&](const std::string& format) {
    return [&, format](const std::string& out) {
      return std::vector<std::string>{"-q", "export", tmp.file("base"), "--format", format, "--out", out};
    };
  };
  const std::vector<Kind> kinds = {
      {"compress", compress_args},
      {"packed", export_to("packed")},
      {"onnx", export_to("onnx")},
      {"torchscript", export_to("torchscript")},
      {"c-header", export_to("c-header")},
      {"sweep",
       [&](const std::string& out) {
         return std::vector<std::string>{"-q", "sweep", "run", tmp.file("sweep.yaml"), "--out", out};
       }},
  };
  // Each command uninterrupted: its output and how long it takes.
  std::map<std::string, std::map<std::string, std::string>> want;
  std::map<std::string, int> took_ms;
  for (const Kind& k : kinds) {
    const std::string out = tmp.file("want-" + k.name);
    const auto start = std::chrono::steady_clock::now();
    ASSERT_EQ(adze(joined(k.args(out))).code, 0) << k.name;
    took_ms[k.name] =
        static_cast<int>(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    want[k.name] = contents(k.name == "sweep" ? out + "/runs" : out);
  }
  std::mt19937 rng(20261130);
  int killed = 0, absent = 0;
  for (int round = 0; round < 50; ++round) {
    const Kind& k = kinds[round % kinds.size()];
    const std::string out = tmp.file("out-" + std::to_string(round));
    const int ms = std::uniform_int_distribution<int>(0, took_ms[k.name] * 11 / 10)(rng);
    const bool was_killed = testing::run_and_kill(k.args(out), ms, tmp.file("log.txt"));
    killed += was_killed;
    if (k.name == "sweep") {  // resumed, the sweep ends where the uninterrupted one did
      const CliRun resumed = adze(joined(k.args(out)));
      ASSERT_EQ(resumed.code, 0) << "round " << round << ", killed after " << ms << " ms: " << resumed.err;
      EXPECT_EQ(differing(contents(out + "/runs"), want[k.name]), "") << "round " << round;
      continue;
    }
    if (!fs::exists(out)) {
      EXPECT_TRUE(was_killed) << k.name << " ended without its output, round " << round;
      ++absent;
      continue;
    }
    EXPECT_EQ(differing(contents(out), want[k.name]), "")
        << k.name << ", killed after " << ms << " ms, round " << round;
  }
  EXPECT_GE(killed, 25);  // most kills land while the command runs...
  EXPECT_GE(absent, 5);   // ...and some before it wrote anything
  // What killed processes left beside their outputs (".out-N.tmp-PID": a kill while the output was being
  // written) is removed by the next write there: each such round's command runs again to its place.
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.path()))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) left.push_back(e.path().filename().string());
  for (const std::string& name : left) {
    const std::string target = name.substr(1, name.find(".tmp-") - 1);  // ".out-7.tmp-123" -> "out-7"
    ASSERT_EQ(target.rfind("out-", 0), 0u) << name;
    ASSERT_FALSE(fs::exists(tmp.file(target))) << name << " beside a whole output";
    const Kind& k = kinds[static_cast<std::size_t>(std::stoi(target.substr(4))) % kinds.size()];
    ASSERT_EQ(adze(joined(k.args(tmp.file(target)))).code, 0) << name;
  }
  ASSERT_EQ(adze(joined(compress_args(tmp.file("last")))).code, 0);
  ASSERT_EQ(adze("-q export " + tmp.file("last") + " --format packed --out " + tmp.file("last.adze")).code, 0);
  EXPECT_EQ(litter(tmp.path()), 0);
}

// A full disk, made by a file-size limit: each command that writes fails with one line naming what it could
// not write, exit 2, and leaves neither its output nor a temporary behind.
TEST(Faults, AFullDiskIsOneLineExit2AndLeavesNothing) {
  TempDir tmp;
  ASSERT_EQ(adze(joined(compress_args(tmp.file("base")))).code, 0);
  const std::vector<std::pair<std::string, std::string>> commands = {
      {"compress", joined(compress_args(tmp.file("out/c")))},
      {"packed", "-q export " + tmp.file("base") + " --format packed --out " + tmp.file("out/m.adze")},
      {"torchscript", "-q export " + tmp.file("base") + " --format torchscript --out " + tmp.file("out/m.pt")},
      {"c-header", "-q export " + tmp.file("base") + " --format c-header --out " + tmp.file("out/mcu")},
  };
  fs::create_directories(tmp.file("out"));
  for (const auto& [name, args] : commands) {
    const std::string cmd =
        "ulimit -f 2; " + shell_quoted(testing::cli_path()) + " " + args + " 2>" + tmp.file("err") + " >/dev/null";
    const int status = std::system(("bash -c " + shell_quoted(cmd)).c_str());
    const std::string err = read_file_text(tmp.file("err"));
    EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : 128, 2) << name << ": " << err;
    EXPECT_EQ(count_lines(err), 1) << name << ": " << err;
    EXPECT_NE(err.find("File too large"), std::string::npos) << name << ": " << err;
    EXPECT_EQ(err.find(".tmp-"), std::string::npos) << name << " names a temporary: " << err;
    EXPECT_TRUE(fs::is_empty(tmp.file("out"))) << name << " left something behind";
  }
}

// Inputs adze cannot read: one line naming the file, exit 2. (Root reads any file, so a file without read
// permission is only tried as another user.)
TEST(Faults, UnreadableInputsAreOneLineExit2) {
  TempDir tmp;
  fs::create_directories(tmp.file("dir.pt"));
  std::vector<std::pair<std::string, std::string>> cases = {
      {"compress " + tmp.file("dir.pt") + " --input-shape 1x3x16x16 --plan " + config("plans/int8.json") +
           " --pipeline " + config("pipelines/ptq.json") + " --out " + tmp.file("o"),
       "it is a directory"},
      {"compress " + fixture("cnn_bn_traced.pt") + " --input-shape 1x3x16x16 --plan " + tmp.file("dir.pt") +
           " --pipeline " + config("pipelines/ptq.json") + " --out " + tmp.file("o"),
       "dir.pt"},
      {"eval " + fixture("cnn_bn_traced.pt") + " --input-shape 1x3x16x16 --data tensors:" + tmp.file("dir.pt"),
       "dir.pt"},
  };
  if (geteuid() != 0) {
    fs::copy_file(fixture("cnn_bn_traced.pt"), tmp.file("locked.pt"));
    fs::permissions(tmp.file("locked.pt"), fs::perms::none);
    cases.push_back({"inspect " + tmp.file("locked.pt") + " --input-shape 1x3x16x16", "Permission denied"});
  }
  for (const auto& [args, mentions] : cases) {
    const CliRun r = adze(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(mentions), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(tmp.file("o")));
  }
}

}  // namespace
}  // namespace adze
