// The adze executable as a user runs it: output shapes, exit codes, and one clear line for bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <tuple>

#include "core/files.h"
#include "core/paired_difference.h"
#include "core/process_settings.h"
#include "tests/cli_run.h"
#include "tests/corrupt_model.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::adze;
using testing::cli_path;
using testing::CliRun;
using testing::config;
using testing::count_lines;
using testing::fixture;
using testing::libtorch_top1;
using testing::TempDir;

// A file under configs/ ("plans/w8a8.json").
// A temporary directory that is also adze's cache for the scope (sensitivity tables measured in a test stay
// there), and the search command over the traced CNN fixture and its tensors.
class CacheScope {
 public:
  CacheScope() { setenv("ADZE_CACHE_DIR", tmp.path().c_str(), 1); }
  ~CacheScope() { unsetenv("ADZE_CACHE_DIR"); }
  std::string file(const std::string& name) const { return tmp.file(name); }

 private:
  TempDir tmp;
};

std::string fixture_search(const std::string& options) {
  return "search " + fixture("cnn_bn_traced.pt") +
         " --input-shape 1x3x16x16 --data tensors:" + fixture("tensors_small.pt") + " --limit 20 --target cortex-m7 " +
         options + " ";
}

TEST(Cli, InspectJsonHasTheDocumentedShape) {
  CliRun r = adze("inspect " + fixture("cnn_bn_scripted.pt") + " --input-shape 1x3x16x16 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["layers"].size(), 3u);
  for (const auto& l : j["layers"])
    for (const char* key : {"name", "kind", "shape", "params", "macs"}) EXPECT_TRUE(l.contains(key)) << key;
  EXPECT_EQ(j["layers"][1]["kind"], "conv2d");
  EXPECT_EQ(j["total"]["params"], 373);
  EXPECT_EQ(j["total"]["bytes_fp32"], 4 * 373);
  int64_t macs = 0;
  for (const auto& l : j["layers"]) macs += l["macs"].get<int64_t>();
  EXPECT_EQ(j["total"]["macs"], macs);
}

TEST(Cli, InspectHumanTableAndFoldBn) {
  CliRun r = adze("inspect " + fixture("cnn_bn_traced.pt") + " --input-shape 1x3x16x16 --fold-bn");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("features.3            conv2d dw"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("total"), std::string::npos);
  EXPECT_NE(r.out.find("parameters 349"), std::string::npos) << r.out;  // 373 - 2 BN x 16 + 8 new bias
}

TEST(Cli, EvalOnATensorFile) {
  CliRun r = adze("eval " + fixture("cnn_bn_traced.pt") + " --data tensors:" + fixture("tensors_small.pt") +
                  " --input-shape 1x3x16x16 --split train --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["metrics"]["samples"], 40);  // the train split: the first 80% of 50
  EXPECT_DOUBLE_EQ(j["metrics"]["top1"].get<double>(),
                   libtorch_top1(fixture("cnn_bn_traced.pt"), fixture("tensors_small.pt"), 0, 40));
  EXPECT_TRUE(j["metrics"].contains("cross_entropy"));
  EXPECT_TRUE(r.err.empty()) << r.err;  // --json: no progress bars
}

TEST(Cli, HelpTeachesWithExamples) {
  CliRun r = adze("inspect --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--input-shape"), std::string::npos);
  EXPECT_NE(r.out.find("Examples:"), std::string::npos);
}

TEST(Cli, CompressWritesModelPlanEncodingsAndAnHonestReport) {
  TempDir tmp;
  std::ofstream(tmp.file("plan.json"))
      << R"({"defaults": {"weight_bits": 8}, "layers": {"classifier": {"weight_bits": 4, "nm": "2:4"}}})";
  std::ofstream(tmp.file("pipeline.json")) << R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights"]})";
  CliRun r =
      adze("compress " + fixture("cnn_bn_traced.pt") + " --input-shape 1x3x16x16 --plan " + tmp.file("plan.json") +
           " --pipeline " + tmp.file("pipeline.json") + " --data tensors:" + fixture("tensors_small.pt") +
           " --split train --out " + tmp.file("out") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto report = nlohmann::json::parse(r.out);
  for (const char* key : {"metrics", "size", "layers", "passes"}) EXPECT_TRUE(report.contains(key)) << key;
  EXPECT_TRUE(report["metrics"].contains("before"));
  EXPECT_TRUE(report["metrics"].contains("after"));
  EXPECT_LT(report["size"]["compressed_bytes"].get<int64_t>(), report["size"]["original_bytes"].get<int64_t>());
  EXPECT_EQ(report["size"]["original_bytes"], 4 * 349);  // after fold-bn: 373 - 32 + 8
  ASSERT_EQ(report["layers"].size(), 3u);
  for (const auto& l : report["layers"])
    for (const char* key : {"name", "weight_bits", "nm", "sparsity", "sqnr_db"}) EXPECT_TRUE(l.contains(key)) << key;
  EXPECT_EQ(report["layers"][2]["nm"], "2:4");
  EXPECT_EQ(report["passes"].size(), 3u);
  for (const char* f : {"model.pt", "model.json", "plan.json", "encodings.pt", "report.json", "report.md"})
    EXPECT_TRUE(std::filesystem::exists(tmp.file("out/") + f)) << f;
  // The written model is loadable again and evaluates to the reported accuracy.
  CliRun again = adze("eval " + tmp.file("out/model.pt") + " --data tensors:" + fixture("tensors_small.pt") +
                      " --split train --json");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["metrics"]["top1"], report["metrics"]["after"]["top1"]);
}

TEST(Cli, CostPricesEveryLayerAndListsWhatATargetCannotRun) {
  TempDir tmp;
  std::ofstream(tmp.file("w8a8.json")) << R"({"defaults": {"weight_bits": 8, "act_bits": 8}})";
  std::ofstream(tmp.file("w4.json")) << R"({"defaults": {"weight_bits": 4}})";
  const std::string base = "cost " + fixture("cnn_bn_traced.pt") + " --input-shape 1x3x16x16 --plan ";
  CliRun r = adze(base + tmp.file("w8a8.json") + " --target cortex-m7 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["layers"].size(), 3u);
  double sum = 0;
  for (const auto& l : j["layers"]) {
    EXPECT_EQ(l["precision"], "int8");
    sum += l["latency_s"].get<double>();
  }
  EXPECT_NEAR(j["latency_s"].get<double>(), sum, 1e-12);
  EXPECT_TRUE(j["fit_problems"].empty());
  r = adze(base + tmp.file("w8a8.json") + " --target a100");  // the human table
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("latency µs"), std::string::npos) << r.out;
  r = adze(base + tmp.file("w4.json") + " --target mobile-npu");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("3 layer(s)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("layer 'classifier': weight_bits 4"), std::string::npos) << r.err;
  r = adze("target show a100 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["macs_per_s"]["int8"]["value"], 312e12);
}

TEST(Cli, SensitivityMeasuresCachesAndPlots) {
  CacheScope tmp;
  const std::string cmd = "sensitivity " + fixture("cnn_bn_traced.pt") +
                          " --input-shape 1x3x16x16 --data tensors:" + fixture("tensors_small.pt") +
                          " --limit 20 --batch 10 --probes 2 --json --plot ";
  CliRun r = adze(cmd + tmp.file("a.svg"));
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["cached"].get<bool>());
  EXPECT_EQ(j["layers"].size(), 3u);
  EXPECT_EQ(j["layers"][2]["options"].size(), 8u);  // 4 bit-widths x {dense, 2:4} on the classifier
  EXPECT_NE(read_file_text(tmp.file("a.svg")).find("<svg"), std::string::npos);
  r = adze(cmd + tmp.file("b.svg"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["cached"].get<bool>());
}

TEST(Cli, SearchWritesThePlanTheFrontAndAPlotAndSaysWhenTheBudgetCannotBeMet) {
  CacheScope tmp;
  const std::string base = fixture_search("--probes 2");
  CliRun r = adze(base + "--budget size=1200B --json --out " + tmp.file("s"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["satisfiable"].get<bool>());
  EXPECT_LE(j["best"]["cost"].get<double>(), 1200);
  EXPECT_GE(j["front"].size(), 1u);
  EXPECT_EQ(j["baselines"].size(), 8u);
  for (const char* f : {"plan.json", "front.json", "front.csv", "front.svg"})
    EXPECT_TRUE(std::filesystem::exists(tmp.file("s") + "/" + f)) << f;
  // The plan is one adze compress reads.
  std::ofstream(tmp.file("p.json")) << R"({"passes": ["quantize.weights"]})";
  r = adze("compress " + fixture("cnn_bn_traced.pt") + " --input-shape 1x3x16x16 --plan " + tmp.file("s") +
           "/plan.json --pipeline " + tmp.file("p.json") + " --out " + tmp.file("c"));
  EXPECT_EQ(r.code, 0) << r.err;
  // A budget below the most compressed plan: exit code 3, the closest plan still written.
  r = adze(base + "--budget size=10B --out " + tmp.file("t"));
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("cannot be met"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(tmp.file("t") + "/plan.json"));
}

TEST(Cli, SearchIsConfirmedAnytimeAndResumable) {
  CacheScope tmp;
  const std::string base = fixture_search(
      "--probes 2 --budget size=1200B --algo evo --algo-option generations=3 --algo-option population=6 "
      "--finetune-steps 4 --json");
  const std::string dir = tmp.file("s");
  CliRun r = adze(base + "--out " + dir);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["loss"], "measured");
  ASSERT_EQ(j["confirmed"].size(), 2u);  // the searched plan and the best uniform one within the budget
  EXPECT_EQ(j["confirmed"][0]["label"], "searched");
  EXPECT_NE(j["confirmed"][0]["pipeline"].get<std::string>().find("finetune.ste"), std::string::npos);
  {  // top-1 after the pipeline is the share of samples right, as recorded one by one for the paired leads
    const nlohmann::json& after = j["confirmed"][0]["after"];
    const std::vector<uint8_t> right =
        outcomes_from_hex(j["confirmed"][0]["outcomes"].get<std::string>(), after["samples"].get<std::size_t>());
    EXPECT_DOUBLE_EQ(after["top1"].get<double>(), static_cast<double>(std::count(right.begin(), right.end(), 1)) /
                                                      static_cast<double>(right.size()));
  }
  const std::string plan = read_file_text(dir + "/plan.json"), log = read_file_text(dir + "/search.log");
  EXPECT_NE(log.find("confirmed searched"), std::string::npos) << log;
  EXPECT_NE(read_file_text(dir + "/confirmed.svg").find("written (searched)"), std::string::npos);
  // Resumed: every plan answered from disk, confirmations included, the same plan out.
  r = adze(base + "--resume --out " + dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_file_text(dir + "/plan.json"), plan);
  const std::string resumed = read_file_text(dir + "/search.log").substr(log.size());
  EXPECT_NE(resumed.find("0 measured now"), std::string::npos) << resumed;
  EXPECT_NE(resumed.find("confirmation of searched read from disk"), std::string::npos) << resumed;
  // A confirmation record edited by hand: refused naming the record and the field, nothing changed.
  {
    const std::string state_path = dir + "/search-state.json", state_text = read_file_text(state_path);
    for (const auto& [field, value, message] :
         {std::tuple<std::string, nlohmann::json, std::string>{"outcomes", "zz", "'outcomes': per-sample outcomes"},
          {"after", 0.9, "'after' is not an object of metrics"},
          {"choice", {0, -1}, "'choice' is not a list of option indices"}}) {
      nlohmann::json edited = nlohmann::json::parse(state_text);
      edited["confirmed"][1][field] = value;
      std::ofstream(state_path) << edited.dump();
      r = adze(base + "--resume --out " + dir);
      EXPECT_EQ(r.code, 2) << field;
      EXPECT_NE(r.err.find("search-state.json: confirmed[1]: " + message), std::string::npos) << r.err;
      EXPECT_EQ(read_file_text(dir + "/plan.json"), plan);
    }
    std::ofstream(state_path) << state_text;
  }
  // Another seed is another search: refused, and nothing in the directory changes.
  r = adze(base + "--seed 1 --resume --out " + dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("searched with seed 0, not 1"), std::string::npos) << r.err;
  EXPECT_EQ(read_file_text(dir + "/plan.json"), plan);
  // Out of time after the first round: the best plan so far, on disk.
  r = adze(base + "--time-budget 0.001s --confirm 0 --out " + tmp.file("t"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(read_file_text(tmp.file("t") + "/search.log").find("stopped by --time-budget"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(tmp.file("t") + "/plan.json"));
  // Runners-up confirmed too: the one with the best top-1 on val after the pipeline is written, and the written
  // plan's paired lead over each other confirmation is reported with its interval.
  // (Evaluated on 3 test samples, so that the evaluation and selection splits differ in size.)
  r = adze(base + "--confirm-limit 3 --out " + tmp.file("one"));
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json searched_alone = nlohmann::json::parse(r.out)["confirmed"][0];
  // Each plan run with a second seed: the first runs are read back, only the new ones run; a plan's figures are
  // its runs' means, and its lead is the per-seed leads' mean.
  r = adze(base + "--confirm-limit 3 --confirm-seeds 2 --resume --out " + tmp.file("one"));
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["confirmed"].size(), 4u);
  EXPECT_EQ(j["confirmed"][0], searched_alone);
  EXPECT_EQ(j["confirmed"][2]["label"], "searched");
  EXPECT_EQ(j["confirmed"][2]["seed"], 1);
  EXPECT_NE(j["confirmed"][2]["after"]["cross_entropy"], searched_alone["after"]["cross_entropy"]);  // another order
  ASSERT_EQ(j["confirmed_plans"].size(), 2u);
  EXPECT_EQ(j["confirmed_plans"][0]["runs"], 2);
  EXPECT_EQ(j["confirmed_plans"][0]["seeds"], nlohmann::json({0, 1}));
  EXPECT_DOUBLE_EQ(
      j["confirmed_plans"][0]["top1"].get<double>(),
      (j["confirmed"][0]["after"]["top1"].get<double>() + j["confirmed"][2]["after"]["top1"].get<double>()) / 2);
  ASSERT_EQ(j["leads"]["over"].size(), 1u);
  const nlohmann::json& by_seed = j["leads"]["over"][0]["per_seed"];
  ASSERT_EQ(by_seed.size(), 2u);
  EXPECT_NEAR(j["leads"]["over"][0]["difference"].get<double>(),
              (by_seed[0]["difference"].get<double>() + by_seed[1]["difference"].get<double>()) / 2, 1e-9);
  EXPECT_LE(j["leads"]["over"][0]["seeds_low"].get<double>(), j["leads"]["over"][0]["difference"].get<double>());
  EXPECT_GE(j["leads"]["over"][0]["seeds_high"].get<double>(), j["leads"]["over"][0]["difference"].get<double>());
  const std::string seeded_log = read_file_text(tmp.file("one") + "/search.log");
  EXPECT_NE(seeded_log.find("confirmation of searched (seed 0) read from disk"), std::string::npos) << seeded_log;
  EXPECT_NE(seeded_log.find("confirmed searched (seed 1)"), std::string::npos) << seeded_log;
  r = adze(base + "--confirm 3 --confirm-limit 3 --out " + tmp.file("sel"));
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["confirmed"][0]["label"], "searched");  // confirmed as without runners-up: the same run
  EXPECT_EQ(j["confirmed"][0]["after"], searched_alone["after"]);
  EXPECT_EQ(j["confirmed"][0]["outcomes"], searched_alone["outcomes"]);
  const nlohmann::json* best = nullptr;
  int searched = 0;
  for (const auto& c : j["confirmed"]) {
    EXPECT_EQ(c["select_split"], "val");
    EXPECT_EQ(c["outcomes"].get<std::string>().size(), (c["after"]["predictions"].get<std::size_t>() + 3) / 4);
    const std::string label = c["label"];
    if (label != "searched" && label.rfind("alternative ", 0) != 0) continue;
    ++searched;
    if (!best || c["select"]["top1"] > (*best)["select"]["top1"] ||
        (c["select"]["top1"] == (*best)["select"]["top1"] &&
         c["select"]["cross_entropy"] < (*best)["select"]["cross_entropy"]))
      best = &c;
  }
  ASSERT_GE(searched, 2);
  ASSERT_TRUE(best);
  EXPECT_EQ(j["selected"]["label"], (*best)["label"]);
  EXPECT_EQ(j["leads"]["plan"], (*best)["label"]);
  EXPECT_EQ(j["leads"]["over"].size(), j["confirmed"].size() - 1);
  for (const auto& l : j["leads"]["over"]) {
    EXPECT_LE(l["low"].get<double>(), l["difference"].get<double>());
    EXPECT_GE(l["high"].get<double>(), l["difference"].get<double>());
  }
  EXPECT_NE(read_file_text(tmp.file("sel") + "/search.log").find("selected " + (*best)["label"].get<std::string>()),
            std::string::npos);
}

TEST(Cli, SearchResumeOfAFuzzedStateRunsOrIsRefusedInOneLine) {
  CacheScope tmp;
  const std::string base = fixture_search("--probes 0 --budget size=1200B --confirm 2 --finetune-steps 2 --json");
  const std::string dir = tmp.file("s"), state_path = dir + "/search-state.json";
  CliRun r = adze(base + "--out " + dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string state = read_file_text(state_path), plan = read_file_text(dir + "/plan.json");
  std::vector<std::string> leaves;  // every value of the document, as a JSON pointer
  const nlohmann::json flat = nlohmann::json::parse(state).flatten();
  for (const auto& [pointer, value] : flat.items()) leaves.push_back(pointer);
  const std::vector<nlohmann::json> replacements = {
      nullptr, "x", -1, 1e300, 2.5, nlohmann::json::array(), nlohmann::json::object(), true};
  std::mt19937 rng(7);
  int refused = 0, ran = 0;
  for (int i = 0; i < 28; ++i) {
    std::string text;
    std::string what;
    if (i < 4) {  // truncated
      text = state.substr(0, rng() % state.size());
      what = "truncated to " + std::to_string(text.size()) + " bytes";
    } else {  // one value of another type
      nlohmann::json doc = nlohmann::json::parse(state);
      what = leaves[rng() % leaves.size()];
      doc[nlohmann::json::json_pointer(what)] = replacements[rng() % replacements.size()];
      text = doc.dump();
    }
    std::ofstream(state_path) << text;
    std::ofstream(dir + "/plan.json") << plan;
    r = adze(base + "--resume --out " + dir);
    EXPECT_TRUE(r.code == 0 || r.code == 2) << what << ": exit " << r.code << "\n" << r.err;
    (r.code == 0 ? ran : refused) += i >= 4;
    if (r.code == 2) {
      EXPECT_EQ(count_lines(r.err), 1) << what << ": " << r.err;
      EXPECT_EQ(read_file_text(dir + "/plan.json"), plan) << what;
      EXPECT_EQ(read_file_text(state_path), text) << what;
    }
  }
  // Values of another type: some break the state (an identity, a record), some only what nothing reads.
  EXPECT_GT(refused, 0);
  EXPECT_GT(ran, 0);
  std::cout << "fuzzed values: " << refused << " refused, " << ran << " resumed\n";
}

TEST(Cli, CompressRefusesBadPlansAndExistingOutputsBeforeAnyWork) {
  TempDir tmp;
  std::ofstream(tmp.file("plan.json")) << R"({"defaults": {"weight_bits": 4, "nm": "2:4"}})";  // conv with 3 inputs
  std::ofstream(tmp.file("pipeline.json")) << R"({"passes": ["sparsity.nm"]})";
  const std::string base =
      "compress " + fixture("cnn_bn_traced.pt") + " --input-shape 1x3x16x16 --pipeline " + tmp.file("pipeline.json");
  CliRun r = adze(base + " --plan " + tmp.file("plan.json") + " --out " + tmp.file("out"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("layer 'features.0' field nm 2:4"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("out")));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path()), {}), 2);  // no temporary left behind
  std::ofstream(tmp.file("int8.json")) << R"({"defaults": {"weight_bits": 8}})";
  std::filesystem::create_directory(tmp.file("taken"));
  r = adze(base + " --plan " + tmp.file("int8.json") + " --out " + tmp.file("taken"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  std::ofstream(tmp.file("bad-pipeline.json")) << R"({"passes": ["finetune.magic"]})";
  r = adze("compress " + fixture("cnn_bn_traced.pt") + " --input-shape 1x3x16x16 --plan " + tmp.file("int8.json") +
           " --pipeline " + tmp.file("bad-pipeline.json") + " --out " + tmp.file("out2"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown pass 'finetune.magic'"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1);
}

// Block decomposition from the command line: plans that cannot apply are refused before any work, naming the
// file, the layer and the field; a decomposed model exports as TorchScript and ONNX (its factor chains), both
// verify, and formats that do not store factors say so.
TEST(Cli, CompressDecomposesExportsTheFactorsAndRefusesBadDecompositions) {
  TempDir tmp;
  const std::string data = " --data tensors:" + fixture("tensors_tokens.pt");
  const std::string base = "-q compress " + fixture("transformer_traced.pt") + " --input-shape 1x16x32 --pipeline " +
                           config("pipelines/ptq.json") + data;
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"layers": {"*.linear1": {"decompose": "tucker"}}})", "field decompose: expected none, lowrank"},
      {R"({"layers": {"*.linear1": {"decompose": "lowrank", "rank": 0}}})",
       "field rank: expected a rank of at least 1"},
      {R"({"layers": {"*.linear1": {"decompose": "lowrank", "rank": 99}}})",
       "layer 'encoder.layers.0.linear1' field rank 99: expected 1..32"},
      {R"({"layers": {"*.linear1": {"decompose": "monarch", "blocks": 5}}})",
       "layer 'encoder.layers.0.linear1' field blocks 5: does not divide the layer's 64 outputs"},
      {R"({"layers": {"*.linear1": {"decompose": "smartdeal", "basis": 0}}})", "field basis: expected a basis"},
      {R"({"layers": {"*.linear1": {"weight_bits": 4, "decompose": "smartdeal", "sparsity": 1.5}}})",
       "layer 'encoder.layers.0.linear1' field sparsity 1.500000: expected [0, 1)"}};
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const std::string plan = tmp.file("bad" + std::to_string(i) + ".json");
    std::ofstream(plan) << bad[i].first;
    CliRun r = adze(base + " --plan " + plan + " --out " + tmp.file("out"));
    EXPECT_EQ(r.code, 2) << bad[i].first;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("'" + plan + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(bad[i].second), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(tmp.file("out")));
  }
  std::ofstream(tmp.file("plan.json")) << R"({"defaults": {"weight_bits": 8}, "layers": {
      "*.linear1": {"decompose": "monarch", "blocks": 4},
      "*.linear2": {"decompose": "lowrank", "rank": 16}}})";
  CliRun r = adze(base + " --plan " + tmp.file("plan.json") + " --batch-size 4 --out " + tmp.file("a") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  std::map<std::string, std::string> decompositions;
  for (const auto& l : report["layers"]) decompositions[l["name"]] = l["decompose"];
  EXPECT_EQ(decompositions["encoder.layers.1.linear1"], "monarch 4 blocks");
  EXPECT_EQ(decompositions["encoder.layers.1.linear2"], "lowrank r=16");
  EXPECT_EQ(decompositions["head"], "none");
  for (const char* format : {"torchscript", "onnx", "packed"}) {
    const std::string out = tmp.file(std::string("a.") + (format[0] == 'o'   ? "onnx"
                                                          : format[0] == 'p' ? "adze"
                                                                             : "pt"));
    ASSERT_EQ(adze("export " + tmp.file("a") + " --format " + format + " --batch 4 --out " + out).code, 0) << format;
    CliRun v = adze("verify " + out + " --against " + tmp.file("a") + data + " --json");
    EXPECT_EQ(v.code, 0) << format << v.err << v.out;
  }
  // SmartDeal (sparse power-of-two coefficients) exports packed, composed at open, and verifies; the C header
  // exporter refuses decomposed layers before any work, naming the layer.
  std::ofstream(tmp.file("smartdeal.json")) << R"({"defaults": {"weight_bits": 8}, "layers": {
      "*.linear1": {"weight_bits": 4, "decompose": "smartdeal", "basis": 4, "sparsity": 0.5}}})";
  ASSERT_EQ(adze(base + " --plan " + tmp.file("smartdeal.json") + " --batch-size 4 --out " + tmp.file("s")).code, 0);
  ASSERT_EQ(adze("export " + tmp.file("s") + " --format packed --batch 4 --out " + tmp.file("s.adze")).code, 0);
  CliRun sv = adze("verify " + tmp.file("s.adze") + " --against " + tmp.file("s") + data + " --json");
  EXPECT_EQ(sv.code, 0) << sv.err << sv.out;
  CliRun header = adze("export " + tmp.file("s") + " --format c-header --out " + tmp.file("s.h"));
  EXPECT_EQ(header.code, 2);
  EXPECT_NE(header.err.find("layer 'encoder.layers.0.linear1': decompose smartdeal"), std::string::npos) << header.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("s.h")));
  // The packed runtime runs lowrank layers as their factors, and verifies layer by layer.
  std::ofstream(tmp.file("lowrank.json")) << R"({"defaults": {"weight_bits": 8}, "layers": {
      "*.linear?": {"decompose": "lowrank", "rank_ratio": 0.5}}})";
  ASSERT_EQ(adze(base + " --plan " + tmp.file("lowrank.json") + " --batch-size 4 --out " + tmp.file("b")).code, 0);
  ASSERT_EQ(adze("export " + tmp.file("b") + " --format packed --batch 4 --out " + tmp.file("b.adze")).code, 0);
  CliRun v = adze("verify " + tmp.file("b.adze") + " --against " + tmp.file("b") + data + " --json");
  EXPECT_EQ(v.code, 0) << v.err << v.out;
}

TEST(Cli, CompressRefusesAModelWhoseWeightsHoldNaNInOneLine) {
  TempDir tmp;
  testing::write_model_with_nan(fixture("transformer_traced.pt"), "encoder.layers.0.linear1.weight", 3,
                                tmp.file("nan.pt"));
  CliRun r = adze("-q compress " + tmp.file("nan.pt") + " --input-shape 1x16x32 --plan " + config("plans/w8a8.json") +
                  " --pipeline " + config("pipelines/ptq-activations.json") +
                  " --data tensors:" + fixture("tensors_tokens.pt") + " --out " + tmp.file("out"));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("model '" + tmp.file("nan.pt") +
                       "': parameter 'encoder.layers.0.linear1.weight' holds NaN (3 of 2048 values)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("out")));
}

// W8A8 on nn.TransformerEncoder: multi-head attention's in-projection is a bare parameter (in_proj_weight), not
// a module's weight. Compressed, it exports as packed and TorchScript, and both verify against the simulation.
TEST(Cli, CompressesAnAttentionModelW8A8AndItsExportsVerify) {
  TempDir tmp;
  const std::string data = " --data tensors:" + fixture("tensors_tokens.pt");
  // One batch size for compress and export: attention's reshapes are traced at a batch size, and carrying a
  // model to another batch is not what this test is about.
  const std::string batch = "4";
  CliRun r = adze("-q compress " + fixture("transformer_traced.pt") + " --input-shape 1x16x32 --plan " +
                  config("plans/w8a8.json") + " --pipeline " + config("pipelines/ptq-activations.json") + data +
                  " --batch-size " + batch + " --out " + tmp.file("a") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  ASSERT_EQ(report["layers"].size(), 9u);
  // Close to the float model.
  const double before = report["metrics"]["before"]["cross_entropy"],
               after = report["metrics"]["after"]["cross_entropy"];
  EXPECT_NEAR(after, before, 0.02 * before) << r.out;
  ASSERT_EQ(adze("export " + tmp.file("a") + " --format packed --batch " + batch + " --out " + tmp.file("a.adze")).code,
            0);
  CliRun packed = adze("verify " + tmp.file("a.adze") + " --against " + tmp.file("a") + data + " --json");
  ASSERT_EQ(packed.code, 0) << packed.err << packed.out;
  EXPECT_GE(nlohmann::json::parse(packed.out)["argmax_agreement"].get<double>(), 0.98);
  CliRun ts = adze("export " + tmp.file("a") + " --format torchscript --out " + tmp.file("a.pt"));
  ASSERT_EQ(ts.code, 0) << ts.err;
  CliRun verified = adze("verify " + tmp.file("a.pt") + " --against " + tmp.file("a") + data + " --json");
  ASSERT_EQ(verified.code, 0) << verified.err << verified.out;
  EXPECT_EQ(nlohmann::json::parse(verified.out)["argmax_agreement"], 1.0);
}

// The Python-traced nn.TransformerEncoder (traced at batch 1), compressed W8A8 and 2:4 + INT4 at another batch,
// exports and verifies at batch 1, at batch 7 and with a symbolic batch, in ONNX, TorchScript and packed.
TEST(Cli, PythonTransformerExportsAndVerifiesAtAnyBatch) {
  TempDir tmp;
  const std::string data = " --data tensors:" + fixture("tensors_tokens.pt") + " --split train";
  for (const std::string plan : {"w8a8", "2of4-int4"}) {
    SCOPED_TRACE(plan);
    const std::string dir = tmp.file(plan);
    CliRun r = adze("-q compress " + fixture("transformer_traced.pt") + " --plan " + config("plans/" + plan + ".json") +
                    " --pipeline " + config(plan == "w8a8" ? "pipelines/ptq-activations.json" : "pipelines/ptq.json") +
                    " --data tensors:" + fixture("tensors_tokens.pt") + " --out " + dir);
    ASSERT_EQ(r.code, 0) << r.err;
    for (const std::string format : {"onnx", "torchscript", "packed"}) {
      const std::string ext = format == "onnx" ? ".onnx" : format == "torchscript" ? ".pt" : ".adze";
      const std::vector<std::string> batches = {"--batch 1", "--batch 7", "--dynamic-batch"};
      for (std::size_t i = 0; i < batches.size(); ++i) {
        const std::string& batch = batches[i];
        SCOPED_TRACE(format + " " + batch);
        const std::string out = dir + "-" + std::to_string(i) + ext;
        CliRun e = adze("export " + dir + " --format " + format + " " + batch + " --out " + out);
        ASSERT_EQ(e.code, 0) << e.err;
        // Random weights give near-tied logits: fidelity here is the cosine of the outputs; agreement on 51
        // samples can flip on a tie (the ORT tests check each integer form).
        CliRun v = adze("verify " + out + " --against " + dir + data + " --min-agreement 0.9 --json");
        ASSERT_EQ(v.code, 0) << v.err << v.out;
        EXPECT_GE(nlohmann::json::parse(v.out)["cosine"].get<double>(), 0.999);
      }
    }
  }
  // An option for a format that has none is refused.
  EXPECT_EQ(adze("export " + tmp.file("w8a8") + " --format packed --ort-target vnni --out " + tmp.file("x.adze")).code,
            2);
}

TEST(Cli, CompressFineTunesReproduciblyAndCompareLinesRunsUp) {
  TempDir tmp;
  std::ofstream(tmp.file("plan.json"))
      << R"({"defaults": {"weight_bits": 8, "act_bits": 8}, "layers": {"classifier": {"weight_bits": 4, "nm": "2:4"}}})";
  std::ofstream(tmp.file("qat.json"))
      << R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights", "quantize.calibrate",
      {"name": "finetune.ste", "options": {"steps": 15, "lr": 1e-3, "batch_size": 8, "distill": 0.5}}]})";
  const std::string base = "-q compress " + fixture("cnn_bn_traced.pt") + " --input-shape 1x3x16x16 --plan " +
                           tmp.file("plan.json") + " --pipeline " + tmp.file("qat.json") + " --seed 3";
  const std::string data = " --data tensors:" + fixture("tensors_small.pt");
  for (const char* out : {"a", "b"}) {
    CliRun r = adze(base + data + " --out " + tmp.file(out));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  for (const char* f : {"model.pt", "encodings.pt"})
    EXPECT_EQ(read_file_text(tmp.file("a/") + f), read_file_text(tmp.file("b/") + f))
        << f << " differs between two runs";
  auto report = nlohmann::json::parse(read_file_text(tmp.file("a/report.json")));
  EXPECT_EQ(report["train_data"]["split"], "train");
  EXPECT_EQ(report["passes"][4]["name"], "finetune.ste");
  CliRun cmp = adze("compare " + tmp.file("a") + " " + tmp.file("b/") + " --json");
  ASSERT_EQ(cmp.code, 0) << cmp.err;
  auto rows = nlohmann::json::parse(cmp.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1]["run"], "b");
  EXPECT_EQ(rows[0]["metric"], "top1");
  EXPECT_EQ(rows[0]["after"], rows[1]["after"]);
  // Exported as TorchScript, it evaluates to what compress reported.
  CliRun exported = adze("export " + tmp.file("a") + " --format torchscript --out " + tmp.file("a.pt"));
  ASSERT_EQ(exported.code, 0) << exported.err;
  CliRun eval = adze("eval " + tmp.file("a.pt") + " --input-shape 1x3x16x16" + data + " --json");
  ASSERT_EQ(eval.code, 0) << eval.err;
  EXPECT_EQ(nlohmann::json::parse(eval.out)["metrics"]["top1"], report["metrics"]["after"]["top1"]);
  // Exported as ONNX, it runs in ONNX Runtime and verifies against the simulation; an impossible threshold fails
  // with exit code 1.
  ASSERT_EQ(adze("export " + tmp.file("a") + " --format onnx --out " + tmp.file("a.onnx")).code, 0);
  CliRun verified = adze("verify " + tmp.file("a.onnx") + " --against " + tmp.file("a") + data + " --json");
  ASSERT_EQ(verified.code, 0) << verified.err << verified.out;
  auto v = nlohmann::json::parse(verified.out);
  EXPECT_TRUE(v["pass"].get<bool>());
  EXPECT_GE(v["argmax_agreement"].get<double>(), 0.995);
  for (const char* key : {"max_abs_diff", "cosine", "metrics", "samples"}) EXPECT_TRUE(v.contains(key)) << key;
  // Against a model fine-tuned with another seed the outputs differ: the strictest thresholds are missed.
  const std::string other_seed = base.substr(0, base.rfind(" --seed 3")) + " --seed 4";
  ASSERT_EQ(adze(other_seed + data + " --out " + tmp.file("other")).code, 0);
  CliRun strict = adze("verify " + tmp.file("a.onnx") + " --against " + tmp.file("other") + data +
                       " --min-cosine 1 --min-agreement 1");
  EXPECT_EQ(strict.code, 1) << strict.err;
  EXPECT_NE(strict.out.find("NOT verified"), std::string::npos) << strict.out;
  EXPECT_EQ(adze("verify " + tmp.file("a.onnx") + " --against " + tmp.file("a") + data + " --min-cosine 1.5").code, 2);
  // Packed and C exports run in their own runtimes (the packed runtime; the C compiler) and verify too.
  ASSERT_EQ(adze("export " + tmp.file("a") + " --format packed --batch 8 --out " + tmp.file("a.adze")).code, 0);
  CliRun packed = adze("verify " + tmp.file("a.adze") + " --against " + tmp.file("a") + data + " --json");
  ASSERT_EQ(packed.code, 0) << packed.err;
  EXPECT_EQ(nlohmann::json::parse(packed.out)["argmax_agreement"], 1.0);
  CliRun c = adze("export " + tmp.file("a") + " --format c-header --out " + tmp.file("a-mcu"));
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find("peak SRAM"), std::string::npos) << c.out;
  CliRun compiled =
      adze("verify " + tmp.file("a-mcu") + " --against " + tmp.file("a") + data + " --min-agreement 0.99");
  EXPECT_EQ(compiled.code, 0) << compiled.err << compiled.out;
  // adze bench: each model in a fresh process, the original first; the adze runtime says what it ran how.
  CliRun bench = adze("bench " + tmp.file("a.adze") + " --against " + tmp.file("a.pt") +
                      " --runs 3 --warmup 1 --profile --json --threads 1");
  ASSERT_EQ(bench.code, 0) << bench.err;
  const auto timed = nlohmann::json::parse(bench.out);
  ASSERT_EQ(timed["rows"].size(), 2u);
  EXPECT_EQ(timed["rows"][0]["format"], "torchscript");
  EXPECT_EQ(timed["rows"][0]["speedup_vs_first"], 1.0);
  EXPECT_EQ(timed["input"]["shape"][0], 8);  // the packed file's batch
  const auto& packed_row = timed["rows"][1];
  for (const char* key : {"median_seconds", "p10_seconds", "p90_seconds", "cold_start_seconds", "peak_rss_kib"})
    EXPECT_GT(packed_row[key].get<double>(), 0) << key;
  EXPECT_LE(packed_row["p10_seconds"].get<double>(), packed_row["p90_seconds"].get<double>());
  EXPECT_FALSE(packed_row["runtime"]["integer_layers"].empty());
  EXPECT_TRUE(packed_row["runtime"]["aten_ops"].is_object());
  EXPECT_FALSE(packed_row["profile"].empty());
  EXPECT_TRUE(timed["cpu_flags"].is_string());
  // --rounds: the models in turn, twice, each round's runs pooled.
  CliRun rounds = adze("bench " + tmp.file("a.adze") + " --runs 3 --warmup 1 --rounds 2 --json --threads 1");
  ASSERT_EQ(rounds.code, 0) << rounds.err;
  const auto pooled = nlohmann::json::parse(rounds.out);
  EXPECT_EQ(pooled["rounds"], 2);
  EXPECT_EQ(pooled["rows"][0]["timed_runs"], 6);
  EXPECT_GT(pooled["rows"][0]["cold_start_seconds"].get<double>(), 0);
  // --thread-counts: each model at each count in every round, a row per (model, count), the first count the
  // model's own baseline.
  CliRun counts = adze("bench " + tmp.file("a.adze") + " --runs 3 --warmup 1 --rounds 2 --thread-counts 1,2 --json");
  ASSERT_EQ(counts.code, 0) << counts.err;
  const auto scaled = nlohmann::json::parse(counts.out);
  ASSERT_EQ(scaled["rows"].size(), 2u);
  EXPECT_EQ(scaled["rows"][0]["threads"], 1);
  EXPECT_EQ(scaled["rows"][1]["threads"], 2);
  EXPECT_EQ(scaled["rows"][0]["speedup_vs_first_threads"], 1.0);
  EXPECT_DOUBLE_EQ(scaled["rows"][1]["speedup_vs_first_threads"].get<double>(),
                   scaled["rows"][1]["speedup_vs_first"].get<double>());
  EXPECT_EQ(scaled["rows"][1]["timed_runs"], 6);
  CliRun table = adze("bench " + tmp.file("a.adze") + " --runs 2 --warmup 0 --thread-counts 2,1");
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("vs 2 thr."), std::string::npos) << table.out;
  CliRun mismatch = adze("bench " + tmp.file("a.adze") + " " + tmp.file("a.onnx"));  // batch 8 and 1
  EXPECT_EQ(mismatch.code, 2);
  EXPECT_NE(mismatch.err.find("exported for batch"), std::string::npos) << mismatch.err;
  EXPECT_TRUE(mismatch.out.empty());
  // A cut packed file: one message naming it, exit code 2.
  write_file_atomically(tmp.file("cut.adze"), read_file_text(tmp.file("a.adze")).substr(0, 500));
  CliRun cut = adze("verify " + tmp.file("cut.adze") + " --against " + tmp.file("a") + data);
  EXPECT_EQ(cut.code, 2);
  EXPECT_NE(cut.err.find("cut.adze': truncated"), std::string::npos) << cut.err;
  CliRun contracts = adze("exporters --json");
  ASSERT_EQ(contracts.code, 0) << contracts.err;
  EXPECT_EQ(nlohmann::json::parse(contracts.out)[0]["name"], "onnx");
  EXPECT_TRUE(nlohmann::json::parse(contracts.out)[0]["contract"].contains("accelerated"));
  // A pipeline that learns from data needs --data, and says so before any work.
  CliRun no_data = adze(base + " --out " + tmp.file("c"));
  EXPECT_EQ(no_data.code, 2);
  EXPECT_NE(no_data.err.find("give --data"), std::string::npos) << no_data.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("c")));
}

// Threads count the CPUs this process may use, not the machine's. Where OpenMP binds threads (OMP_PROC_BIND),
// libgomp binds the first thread of `adze bench` to one CPU as it loads, and a child started from it inherited
// that CPU: its two threads took 40 ms a ResNet-18 run instead of 0.75. Under a narrowed affinity (as `taskset
// -c` gives), the default is one thread per usable CPU, and more warns.
TEST(Cli, ThreadsFollowTheCpusThisProcessMayUse) {
  const std::vector<int> all = usable_cpus();  // this test links no OpenMP: its thread's affinity
  if (all.size() < 2) GTEST_SKIP() << "needs two CPUs";
  const std::string bench =
      "bench " + fixture("cnn_bn_traced.pt") + " --input-shape 1x3x16x16 --runs 2 --warmup 0 --json";
  CliRun bound = adze("--threads 2 " + bench, "OMP_PROC_BIND=true");
  ASSERT_EQ(bound.code, 0) << bound.err;
  const auto row = nlohmann::json::parse(bound.out)["rows"][0];
  EXPECT_EQ(row["threads"], 2);
  EXPECT_EQ(row["cpus"], static_cast<int>(all.size()));
  EXPECT_EQ(bound.err.find("warning"), std::string::npos) << bound.err;
  ASSERT_TRUE(set_this_thread_cpus({all.back()}));  // the children of this thread inherit it
  CliRun by_default = adze(bench);
  CliRun two = adze("--threads 2 " + bench);
  ASSERT_TRUE(set_this_thread_cpus(all));
  ASSERT_EQ(by_default.code, 0) << by_default.err;
  const auto narrowed = nlohmann::json::parse(by_default.out)["rows"][0];
  EXPECT_EQ(narrowed["threads"], 1);
  EXPECT_EQ(narrowed["cpus"], 1);
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_NE(two.err.find("adze: warning: --threads 2 on 1 usable CPU"), std::string::npos) << two.err;
}

struct BadInput {
  std::string name;
  std::string args;      // {fx} is replaced by the fixtures dir, {tmp} by a temp dir
  std::string mentions;  // the message must name this
};

void PrintTo(const BadInput& b, std::ostream* os) { *os << b.name; }

class CliBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(CliBadInput, OneLineOnStderrExitCode2NoOutput) {
  TempDir tmp;
  std::ofstream(tmp.file("empty.pt")).close();
  std::ofstream(tmp.file("text.pt")) << "not a model";
  auto bytes = read_file_bytes(fixture("cnn_bn_traced.pt"));
  std::ofstream(tmp.file("half.pt"), std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  std::string args = GetParam().args;
  for (const auto& [key, value] :
       {std::pair<std::string, std::string>{"{fx}", std::string(testing::source_dir()) + "/tests/data"},
        {"{tmp}", tmp.path()}})
    for (auto pos = args.find(key); pos != std::string::npos; pos = args.find(key))
      args.replace(pos, key.size(), value);
  CliRun r = adze(args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("adze: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(GetParam().mentions), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(r.err.find("terminate"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, CliBadInput,
    ::testing::Values(
        BadInput{"MissingModel", "inspect {tmp}/nope.pt --input-shape 1x3", "nope.pt"},
        BadInput{"EmptyModel", "inspect {tmp}/empty.pt --input-shape 1x3", "empty"},
        BadInput{"TextModel", "inspect {tmp}/text.pt --input-shape 1x3", "not a readable TorchScript"},
        BadInput{"TruncatedModel", "inspect {tmp}/half.pt --input-shape 1x3x16x16", "half.pt"},
        BadInput{"MalformedShape", "inspect {fx}/cnn_bn_traced.pt --input-shape 1x3xfoo", "'foo'"},
        BadInput{"ShapeDoesNotFit", "inspect {fx}/cnn_bn_traced.pt --input-shape 1x5x16x16", "1x5x16x16"},
        BadInput{"NoShape", "inspect {fx}/cnn_bn_traced.pt", "--input-shape"},
        BadInput{"DataDirMissing", "eval {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data fmnist:{tmp}/none",
                 "none"},
        BadInput{"DataDirEmpty", "eval {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data fmnist:{tmp}",
                 "t10k-images"},
        BadInput{"UnknownData", "eval {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data cifar", "cifar"},
        BadInput{"DataDoesNotFitModel", "eval {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data fmnist --limit 10",
                 "3x16x16"},
        BadInput{"UnknownSplit", "eval {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data fmnist --split dev", "dev"},
        BadInput{"UnknownFlag", "inspect {fx}/cnn_bn_traced.pt --bogus", "--bogus"},
        BadInput{"UnknownReference", "reference train mnist-mlp", "mnist-mlp"},
        BadInput{"CompareNotAReport", "compare {tmp}", "report.json"},
        BadInput{"ExportNotCompressed", "export {tmp} --format torchscript --out {tmp}/x.pt", "model.pt"},
        BadInput{"ExportUnknownFormat", "export {tmp} --format tflite --out {tmp}/x", "tflite"},
        BadInput{"VerifyUnknownFormat", "verify {fx}/tensors_small.pt.bak --against {tmp} --data fmnist",
                 "tensors_small.pt.bak"},
        BadInput{"VerifyThresholdOutOfRange",
                 "verify {fx}/cnn_bn_traced.pt --against {tmp} --data fmnist --min-agreement 2", "--min-agreement"},
        BadInput{"VerifyNotCompressed", "verify {fx}/cnn_bn_traced.pt --against {tmp} --data fmnist", "model.pt"},
        BadInput{"CostUnknownTarget",
                 "cost {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --plan {tmp}/p.json --target tpu",
                 "unknown target 'tpu'"},
        BadInput{"CostBatchZero",
                 "cost {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --plan {tmp}/p.json --target a100 --batch 0",
                 "--batch 0"},
        BadInput{"TargetNotJson", "target show {tmp}/text.pt", "not valid JSON"},
        BadInput{"TargetMissing", "target show {tmp}/none.json", "none.json"},
        BadInput{"CalibrateNotHost", "target calibrate a100", "only measure 'host'"},
        BadInput{
            "SensitivityBadNm",
            "sensitivity {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --nm 2of4",
            "2of4"},
        BadInput{"SearchBadBudget",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --target "
                 "a100 --budget size=2kg --out {tmp}/s",
                 "unknown unit 'kg'"},
        BadInput{"SensitivityBadDecompose",
                 "sensitivity {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt "
                 "--decompose lowrank:2",
                 "--decompose 'lowrank:2': the rank ratio must be in (0, 1]"},
        BadInput{"SearchUnknownDecompose",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --target "
                 "a100 --budget size=2KB --decompose tucker:3 --out {tmp}/s",
                 "--decompose 'tucker:3': expected none, lowrank:RATIO, monarch:BLOCKS or smartdeal:BASIS"},
        BadInput{"SearchUnknownAlgo",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --target "
                 "a100 --budget size=2KB --algo anneal --out {tmp}/s",
                 "unknown searcher 'anneal'"},
        BadInput{"SearchAlgoOptionNoValue",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --target "
                 "a100 --budget size=2KB --algo evo --algo-option population --out {tmp}/s",
                 "expected NAME=VALUE"},
        BadInput{"SearchAlgoOptionUnknown",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --target "
                 "a100 --budget size=2KB --algo rl --algo-option generations=3 --out {tmp}/s",
                 "generations"},
        BadInput{"SearchTimeBudget",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --target "
                 "a100 --budget size=2KB --time-budget 5parsecs --out {tmp}/s",
                 "--time-budget '5parsecs'"},
        BadInput{"SearchResumeNothing",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --limit 20 "
                 "--probes 0 --target a100 --budget size=2KB --resume --out {tmp}/none",
                 "no such directory"},
        BadInput{"SearchUnknownBaseline",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --limit 20 "
                 "--probes 0 --target a100 --budget size=2KB --confirm-baseline w5 --out {tmp}/s",
                 "--confirm-baseline 'w5'"},
        BadInput{"SearchUnknownConfirmSplit",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --target "
                 "a100 --budget size=2KB --confirm-split dev --out {tmp}/s",
                 "split 'dev'"},
        BadInput{"SearchUnknownSelectSplit",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --target "
                 "a100 --budget size=2KB --confirm 2 --select-split holdout --out {tmp}/s",
                 "split 'holdout'"},
        BadInput{"SearchNoConfirmSeeds",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --target "
                 "a100 --budget size=2KB --confirm-seeds 0 --out {tmp}/s",
                 "--confirm-seeds 0: must be >= 1"},
        BadInput{"SearchSelectOnTheReportedSplit",
                 "search {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data tensors:{fx}/tensors_small.pt --target "
                 "a100 --budget size=2KB --confirm 2 --select-split test --out {tmp}/s",
                 "--select-split test is also --confirm-split"},
        BadInput{"BenchBatchZero", "bench {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --batch 0", "--batch"},
        BadInput{"BenchAbsurdBatch", "bench {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --batch 100000000",
                 "--batch 100000000: an input of 100000000x3x16x16 holds more than"},
        BadInput{"BenchRoundsZero", "bench {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --rounds 0", "--rounds"},
        BadInput{"BenchThreadCountZero", "bench {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --thread-counts 1,0",
                 "--thread-counts: 0"},
        BadInput{"BenchThreadCountTwice", "bench {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --thread-counts 2,2",
                 "given twice"},
        BadInput{"BenchThreadCountNotANumber",
                 "bench {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --thread-counts 1,two", "--thread-counts"},
        BadInput{"BenchUnknownFormat", "bench {fx}/tensors_small.pt.bak", "cannot tell the format"},
        BadInput{"BenchNotAModel", "bench {tmp}/text.pt --input-shape 1x3", "not a loadable TorchScript"},
        BadInput{"BenchNoInputShape", "bench {fx}/cnn_bn_traced.pt", "--input-shape"},
        BadInput{"BenchWrongInputShape", "-q bench {fx}/cnn_bn_traced.pt --input-shape 1x3x5 --runs 1",
                 "on an input of shape 1x3x5"},
        BadInput{"AbsurdInputShape", "inspect {fx}/cnn_bn_traced.pt --input-shape 100000x1x28x28000",
                 "more than the 1.07e+09 an input may hold"},
        BadInput{"SensitivityNoData", "sensitivity {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --data cifar",
                 "cifar"},
        // Omitting --threads means one per hardware thread; an explicit count below 1 is a mistake.
        BadInput{"ThreadsZero", "--threads 0 inspect {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16",
                 "--threads must be at least 1 (got 0)"},
        BadInput{"ThreadsNegative", "--threads -2 inspect {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16",
                 "--threads must be at least 1 (got -2)"},
        BadInput{"ThreadsZeroAfterTheCommand", "inspect {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16 --threads=0",
                 "--threads must be at least 1"},
        // Thousands of threads are a typo: libgomp would spend minutes starting them before any work.
        BadInput{"ThreadsAbsurd", "--threads 5000 inspect {fx}/cnn_bn_traced.pt --input-shape 1x3x16x16",
                 "--threads must be at most 1024 (got 5000)"}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

}  // namespace
}  // namespace adze
