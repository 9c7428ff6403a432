#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/paired_difference.h"
#include "core/process_settings.h"
#include "core/rank_correlation.h"
#include "core/registry.h"
#include "core/shape.h"
#include "core/table.h"
#include "core/zip_bounds.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;
using testing::TempDir;

TEST(ParseShape, AcceptsDimensionsSeparatedByXOrComma) {
  EXPECT_EQ(parse_shape("1x3x224x224"), (Shape{1, 3, 224, 224}));
  EXPECT_EQ(parse_shape("8,128"), (Shape{8, 128}));
  EXPECT_EQ(parse_shape("7"), (Shape{7}));
  EXPECT_EQ(shape_to_string({1, 3, 224, 224}), "1x3x224x224");
  EXPECT_EQ(shape_numel({2, 3, 4}), 24);
}

TEST(ParseShape, RejectsMalformedInputNamingThePart) {
  expect_error([] { parse_shape(""); }, ErrorKind::kInvalidArgument, {"--input-shape", "empty"});
  expect_error([] { parse_shape("1x3xfoo"); }, ErrorKind::kInvalidArgument, {"'foo'", "1x3x224x224"});
  expect_error([] { parse_shape("1x0x3"); }, ErrorKind::kInvalidArgument, {"dimension 2 is zero"});
  expect_error([] { parse_shape("1xx3"); }, ErrorKind::kInvalidArgument, {"dimension 2 is empty"});
  expect_error([] { parse_shape("1x-3"); }, ErrorKind::kInvalidArgument, {"'-3'"});
  expect_error([] { parse_shape("99999999999"); }, ErrorKind::kInvalidArgument, {"too large"});
  expect_error([] { parse_shape("1x2x"); }, ErrorKind::kInvalidArgument, {"empty"});
  expect_error([] { parse_shape("1x1x1x1x1x1x1x1x1"); }, ErrorKind::kInvalidArgument, {"more than 8"});
  // Absurd sizes are refused before any allocation, naming what they would cost.
  expect_error([] { parse_shape("100000x1x28x28000"); }, ErrorKind::kInvalidArgument,
               {"7.84e+10 elements", "3.14e+11 bytes as float32", "more than the 1.07e+09"});
  EXPECT_EQ(shape_numel(parse_shape("1024x1024x1024")), kMaxShapeElements);  // the limit itself is accepted
}

TEST(ParseShape, FuzzedStringsEitherParseOrThrowAdzeError) {
  std::mt19937 rng(1234);
  const std::string alphabet = "0123456789x,- a\t";
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 24, ' ');
    for (auto& c : s) c = alphabet[rng() % alphabet.size()];
    try {
      Shape shape = parse_shape(s);
      ASSERT_FALSE(shape.empty());
      for (auto d : shape) ASSERT_GT(d, 0);
      EXPECT_EQ(parse_shape(shape_to_string(shape)), shape);  // round trip
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    }
  }
}

std::string_view view(const std::vector<char>& bytes) { return {bytes.data(), bytes.size()}; }

// The zip and pickle bounds checks pass what torch.save writes and refuse archives whose offsets point outside
// them and pickles whose lengths run past their end, among them the files fuzzing found to crash libtorch's
// in-memory reader or make it allocate gigabytes (kept as fuzz seeds).
TEST(ZipBounds, PassesTorchSaveFilesAndRefusesDamagedDirectories) {
  const std::vector<char> good = read_file_bytes(testing::fixture("tensors_small.pt"));
  EXPECT_NO_THROW(check_torch_save_bounds(view(good), "good"));
  std::vector<char> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2));
  expect_error([&] { check_zip_bounds(view(cut), "cut"); }, ErrorKind::kIo,
               {"failed to read cut", "a damaged zip archive"});
  std::vector<char> moved = good;
  moved[moved.size() - 3] = '\x7f';  // the end record's directory offset, far past the end
  expect_error([&] { check_zip_bounds(view(moved), "moved"); }, ErrorKind::kIo, {"a damaged zip archive"});
  int regressions = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(testing::source_dir()) + "/tests/fuzz/corpus/tensors"))
    if (e.path().filename().string().rfind("regression-", 0) == 0) {
      ++regressions;
      expect_error([&] { check_torch_save_bounds(view(read_file_bytes(e.path().string())), "r"); }, ErrorKind::kIo,
                   {"not a torch.save file (a damaged"});
    }
  EXPECT_GE(regressions, 5);
  const char pickle[] = {'\x80', '\x02', 'X', '\xff', '\xff', '\xff', '\xff', 'a', '.'};  // a 4 GB string in 9 bytes
  expect_error([&] { check_pickle_bounds(pickle, sizeof pickle, "p"); }, ErrorKind::kIo,
               {"a damaged pickle at byte 2", "4294967295 bytes"});
  const char memo[] = {'\x80', '\x02', 'N', 'r', '\x10', '\xf0', '\x16', '\x37', '.'};  // memo slot 924250128
  expect_error([&] { check_pickle_bounds(memo, sizeof memo, "p"); }, ErrorKind::kIo, {"a memo index 924250128"});
  // libtorch's unpickler pops without checking its stack: BUILD on a dict alone freed memory it never allocated.
  const char build[] = {'\x80', '\x02', '}', 'q', '\x00', '(', 'b', '.'};
  expect_error([&] { check_pickle_bounds(build, sizeof build, "p"); }, ErrorKind::kIo,
               {"byte 6: an opcode that takes 2 values from a stack of 1"});
  const char odd[] = {'\x80', '\x02', '(', 'N', 'd', '.'};  // DICT on one value: a key without its value
  expect_error([&] { check_pickle_bounds(odd, sizeof odd, "p"); }, ErrorKind::kIo,
               {"an odd number of keys and values"});
  const char unmarked[] = {'\x80', '\x02', 'N', 't', '.'};
  expect_error([&] { check_pickle_bounds(unmarked, sizeof unmarked, "p"); }, ErrorKind::kIo, {"needs a mark"});
  const char sunk[] = {'\x80', '\x02', 'N', 'N', '(', '\x86', 't', '.'};  // TUPLE2 pops from under the mark
  expect_error([&] { check_pickle_bounds(sunk, sizeof sunk, "p"); }, ErrorKind::kIo,
               {"a mark at depth 2 of a stack of 1"});
}

// What libtorch's archive reader checks as it opens (and leaks on, when it throws) is checked first: a file
// without its version record, or with a damaged one, gets adze's one line.
TEST(ZipBounds, RefusesArchivesWithoutAGoodVersionRecord) {
  const std::vector<char> good = read_file_bytes(testing::fixture("tensors_small.pt"));
  const std::vector<ZipEntry> members = check_zip_bounds(view(good), "good");
  EXPECT_NO_THROW(check_torch_save_records(view(good), members, "good"));
  const auto version = std::find_if(members.begin(), members.end(), [](const ZipEntry& e) {
    return e.name.size() > 8 && e.name.compare(e.name.size() - 8, 8, "/version") == 0;
  });
  ASSERT_NE(version, members.end());
  std::vector<char> damaged = good;
  damaged[version->offset] = damaged[version->offset] == '9' ? '8' : '9';  // the checksum no longer matches
  expect_error([&] { check_torch_save_bounds(view(damaged), "d"); }, ErrorKind::kIo,
               {"failed to read d: not a torch.save file (a damaged version record"});
  std::vector<char> renamed = good;  // every copy of the record's name (directory and local header) renamed
  const std::string from = version->name, to = from.substr(0, from.size() - 7) + "vers1on";
  for (auto at = std::search(renamed.begin(), renamed.end(), from.begin(), from.end()); at != renamed.end();
       at = std::search(at, renamed.end(), from.begin(), from.end()))
    at = std::copy(to.begin(), to.end(), at);
  expect_error([&] { check_torch_save_bounds(view(renamed), "r"); }, ErrorKind::kIo, {"(no version record)"});
  std::vector<ZipEntry> flat = members;
  flat.front().name = "data.pkl";
  expect_error([&] { check_torch_save_records(view(good), flat, "f"); }, ErrorKind::kIo,
               {"'data.pkl' is in no folder"});
  expect_error([&] { check_torch_save_records(view(good), {}, "e"); }, ErrorKind::kIo, {"an archive without members"});
}

// A temporary whose writer is a zombie (killed, not yet reaped by whoever inherited it) is litter too.
TEST(WriteAtomically, RemovesTheTemporaryOfAZombieWriter) {
  TempDir dir;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  // Not reaped yet: a zombie until waitpid below.
  for (int i = 0; i < 200; ++i) {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string line;
    std::getline(stat, line);
    if (line.find(") Z") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const std::string stale = dir.file(".out.tmp-" + std::to_string(child));
  std::filesystem::create_directory(stale);
  std::ofstream(stale + "/half-written") << "x";
  write_file_atomically(dir.file("out"), "whole");
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_EQ(read_file_text(dir.file("out")), "whole");
  waitpid(child, nullptr, 0);
}

TEST(WriteAtomically, WritesThenRenames) {
  TempDir dir;
  const std::string path = dir.file("out.txt");
  write_file_atomically(path, "hello");
  EXPECT_EQ(read_file_text(path), "hello");
  write_file_atomically(path, "again");
  EXPECT_EQ(read_file_text(path), "again");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(WriteAtomically, LeavesNothingWhenTheWriterThrows) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  EXPECT_THROW(write_atomically(path,
                                [](const std::string& tmp) {
                                  std::ofstream(tmp) << "partial";
                                  throw Error(ErrorKind::kIo, "disk full");
                                }),
               Error);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 0);
}

TEST(WriteAtomically, NamesAMissingDirectory) {
  expect_error([] { write_file_atomically("/nonexistent-adze-dir/x.json", "{}"); }, ErrorKind::kIo,
               {"/nonexistent-adze-dir", "does not exist"});
}

TEST(ReadFile, NamesMissingFilesAndDirectories) {
  TempDir dir;
  expect_error([&] { read_file_bytes(dir.file("nope")); }, ErrorKind::kIo, {"nope", "no such file"});
  expect_error([&] { read_file_bytes(dir.path()); }, ErrorKind::kIo, {"is a directory"});
}

// A pipe (/dev/stdin, a shell's <(...)) has no size to seek to: it is read to its end.
TEST(ReadFile, ReadsAPipeToItsEnd) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::string text(100000, 'x');  // more than a pipe holds: the writer waits for the reader
  std::thread writer([&] {
    for (std::size_t at = 0; at < text.size();) {
      const ssize_t n = ::write(fds[1], text.data() + at, text.size() - at);
      if (n <= 0) break;
      at += static_cast<std::size_t>(n);
    }
    ::close(fds[1]);
  });
  const std::string got = read_file_text("/proc/self/fd/" + std::to_string(fds[0]));
  writer.join();
  ::close(fds[0]);
  EXPECT_EQ(got, text);
}

TEST(FirstLineOf, SkipsTracebacksAndCppStacks) {
  EXPECT_EQ(first_line_of(std::runtime_error("\nTraceback\n  File x\nRuntimeError: shapes differ\n")), "shapes differ");
  EXPECT_EQ(first_line_of(std::runtime_error("bad thing\nException raised from foo at bar.cpp:12")), "bad thing");
}

TEST(Table, AlignsColumnsAndPrintsRules) {
  Table t;
  t.add_column("name");
  t.add_column("n", Table::Align::kRight);
  t.add_row({"a", "1"});
  t.add_rule();
  t.add_row({"total", "123"});
  std::ostringstream out;
  t.print(out);
  EXPECT_EQ(out.str(), "name     n\n----------\na        1\n----------\ntotal  123\n");
}

TEST(HumanUnits, FormatsCountsAndBytes) {
  EXPECT_EQ(human_count(999), "999");
  EXPECT_EQ(human_count(1234567), "1.23 M");
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1536), "1.50 KiB");
  EXPECT_EQ(percent(0.1234), "12.34%");
}

// Without OpenMP binding threads (this test links no OpenMP), the CPUs usable are this thread's affinity, as
// `taskset -c` narrows it, and a child's CPUs are left as they are.
TEST(ProcessSettings, UsableCpusFollowThisThreadsAffinity) {
  const std::vector<int> all = this_thread_cpus();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(usable_cpus(), all);
  ASSERT_TRUE(set_this_thread_cpus({all.back()}));
  EXPECT_EQ(usable_cpus(), std::vector<int>{all.back()});
  {
    const ChildCpus children;
    EXPECT_EQ(this_thread_cpus(), std::vector<int>{all.back()});
  }
  ASSERT_TRUE(set_this_thread_cpus(all));
  EXPECT_EQ(usable_cpus(), all);
}

}  // namespace
}  // namespace adze

namespace adze {
namespace {

TEST(ResolveOptions, FillsDefaultsAndNamesUnknownOrMistypedOptions) {
  const std::vector<OptionSpec> specs = {
      {"steps", "int", 100, "steps"}, {"lr", "number", 0.01, "rate"}, {"kd", "bool", false, "distil"}};
  nlohmann::json out = resolve_options(specs, nlohmann::json::parse(R"({"steps": 5})"), "step 1 (finetune)");
  EXPECT_EQ(out["steps"], 5);
  EXPECT_EQ(out["lr"], 0.01);
  EXPECT_EQ(resolve_options(specs, nullptr, "x")["kd"], false);
  testing::expect_error([&] { resolve_options(specs, nlohmann::json::parse(R"({"step": 5})"), "step 1 (finetune)"); },
                        ErrorKind::kInvalidConfig, {"step 1 (finetune)", "unknown option 'step'", "steps, lr, kd"});
  testing::expect_error([&] { resolve_options(specs, nlohmann::json::parse(R"({"steps": 1.5})"), "s"); },
                        ErrorKind::kInvalidConfig, {"'steps' must be of type int"});
  testing::expect_error([&] { resolve_options(specs, nlohmann::json::parse("[1]"), "s"); }, ErrorKind::kInvalidConfig,
                        {"options must be an object"});
}

enum class Shade { kLight, kDark };
struct TypedOptions {
  int64_t steps = 100;
  double rate = 0.5;
  bool verbose = false;
  std::string method = "mse";
  Shade shade = Shade::kDark;
};

OptionList<TypedOptions> typed_list() {
  using O = TypedOptions;
  return OptionList<O>()
      .add(&O::steps, "steps", "optimizer steps", at_least(1))
      .add(&O::rate, "rate", "a share", above(0).at_most(1))
      .add(&O::verbose, "verbose", "say more")
      .add(&O::method, "method", "an observer", one_of({"minmax", "mse"}))
      .choose(&O::shade, "shade", "how dark", {{"light", Shade::kLight}, {"dark", Shade::kDark}});
}

TEST(OptionList, DeclaresOnceTheSchemaTheHelpAndTheStruct) {
  const auto list = typed_list();
  const std::vector<OptionSpec> specs = list.specs();
  ASSERT_EQ(specs.size(), 5u);
  // Types and defaults come from the struct.
  EXPECT_EQ(specs[0].type, "int");
  EXPECT_EQ(specs[0].default_value, 100);
  EXPECT_EQ(specs[1].type, "number");
  EXPECT_EQ(specs[2].type, "bool");
  EXPECT_EQ(specs[3].default_value, "mse");
  EXPECT_EQ(specs[4].type, "string");
  EXPECT_EQ(specs[4].default_value, "dark");
  EXPECT_EQ(help_line(specs[1]), "--rate (number, default 0.5, in (0, 1]): a share");
  EXPECT_EQ(help_line(specs[4], "--opt "), "--opt shade (string, default \"dark\", one of: light, dark): how dark");
  EXPECT_EQ(to_json(specs[0])["min"], 1);
  EXPECT_EQ(to_json(specs[4])["choices"], nlohmann::json::parse(R"(["light", "dark"])"));

  const TypedOptions defaults = list.read(resolve_options(specs, nullptr, "x"));
  EXPECT_EQ(defaults.steps, 100);
  EXPECT_EQ(defaults.shade, Shade::kDark);
  const TypedOptions given = list.read(resolve_options(
      specs, nlohmann::json::parse(R"({"steps": 7, "rate": 1, "verbose": true, "method": "minmax", "shade": "light"})"),
      "x"));
  EXPECT_EQ(given.steps, 7);
  EXPECT_EQ(given.rate, 1.0);
  EXPECT_TRUE(given.verbose);
  EXPECT_EQ(given.method, "minmax");
  EXPECT_EQ(given.shade, Shade::kLight);

  // Limits are checked with the schema, naming the option, the limit and the value.
  const auto bad = [&](const char* text, std::vector<std::string> parts) {
    testing::expect_error([&] { resolve_options(specs, nlohmann::json::parse(text), "step 2 (x)"); },
                          ErrorKind::kInvalidConfig, parts);
  };
  bad(R"({"steps": 0})", {"step 2 (x)", "'steps' must be at least 1, found 0"});
  bad(R"({"rate": 0})", {"'rate' must be in (0, 1], found 0"});
  bad(R"({"rate": 1.5})", {"'rate' must be in (0, 1]"});
  bad(R"({"method": "max"})", {"'method' must be one of: minmax, mse, found \"max\""});
  bad(R"({"shade": "grey"})", {"'shade' must be one of: light, dark"});
}

TEST(Registry, FindsEntriesAndListsKnownNames) {
  Registry<int> r("widget");
  r.add({"a.one", "first", {}, [](const nlohmann::json&) { return std::make_unique<int>(1); }});
  r.add({"b.two", "second", {}, [](const nlohmann::json&) { return std::make_unique<int>(2); }});
  EXPECT_EQ(*r.get("b.two", "here").make(nullptr), 2);
  testing::expect_error([&] { r.get("c", "config 'x'"); }, ErrorKind::kInvalidConfig,
                        {"config 'x'", "unknown widget 'c'", "a.one, b.two"});
  EXPECT_THROW(r.add({"a.one", "dup", {}, nullptr}), Error);
}

}  // namespace
}  // namespace adze

namespace adze {
namespace {

TEST(ContentHash, SameInputsSameHashAndPartsAreDelimited) {
  EXPECT_EQ(ContentHash().add("ab").add("c").hex(), ContentHash().add("ab").add("c").hex());
  EXPECT_NE(ContentHash().add("ab").add("c").hex(), ContentHash().add("a").add("bc").hex());
  EXPECT_EQ(ContentHash().hex().size(), 16u);
  EXPECT_EQ(ContentHash().add("").hex(), ContentHash().add("").hex());
  EXPECT_NE(ContentHash().add("").hex(), ContentHash().hex());
}

TEST(RankCorrelation, SpearmanOfKnownLists) {
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4, 5}, {1, 4, 9, 16, 1000}), 1.0);  // ranks, not values
  // Ties take their average rank: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4).
  EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 2, 3, 4}), 4.5 / std::sqrt(4.5 * 5.0), 1e-12);
  // The textbook example: d² = 0+1+1+0+... gives 1 − 6Σd²/(n(n²−1)).
  EXPECT_NEAR(spearman({1, 2, 3, 4, 5}, {2, 1, 4, 3, 5}), 1.0 - 6.0 * 4 / (5 * 24), 1e-12);
  testing::expect_error([] { spearman({1, 1}, {1, 2}); }, ErrorKind::kInvalidArgument, {"constant"});
  testing::expect_error([] { spearman({1}, {1}); }, ErrorKind::kInvalidArgument, {"at least 2"});
}

TEST(PairedDifference, CountsOnlyTheSamplesTheModelsDisagreeOn) {
  const PairedDifference d = paired_difference({1, 1, 0, 0, 1}, {1, 0, 1, 0, 0});
  EXPECT_EQ(d.samples, 5);
  EXPECT_EQ(d.only_a, 2);
  EXPECT_EQ(d.only_b, 1);
  EXPECT_DOUBLE_EQ(d.difference, 0.2);
  // Per-sample differences 0, +1, -1, 0, +1: mean 0.2, sample variance 0.7, standard error sqrt(0.7 / 5).
  EXPECT_NEAR(d.low, 0.2 - 1.959964 * std::sqrt(0.14), 1e-12);
  EXPECT_NEAR(d.high, 0.2 + 1.959964 * std::sqrt(0.14), 1e-12);
  const PairedDifference same = paired_difference({1, 0, 1}, {1, 0, 1});
  EXPECT_EQ(same.difference, 0);
  EXPECT_EQ(same.low, 0);
  EXPECT_EQ(same.high, 0);
  // Two models that disagree on many samples but are right equally often: an interval around 0.
  std::vector<uint8_t> a(10000), b(10000);
  std::mt19937 rng(3);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = b[(i + 1) % b.size()] = static_cast<uint8_t>(rng() % 10 != 0);
  const PairedDifference noise = paired_difference(a, b);
  EXPECT_EQ(noise.difference, 0);
  EXPECT_LT(noise.low, -0.005);
  EXPECT_GT(noise.high, 0.005);
  testing::expect_error([] { paired_difference({1, 0}, {1}); }, ErrorKind::kInvalidArgument, {"2 and 1 outcomes"});
  testing::expect_error([] { paired_difference(std::vector<uint8_t>{}, std::vector<uint8_t>{}); },
                        ErrorKind::kInvalidArgument, {"at least 1"});
}

TEST(PairedDifference, AveragesEachSampleOverSeveralRuns) {
  // Per sample, A's share right minus B's: (1 - 1/2), (1/2 - 1), (0 - 0), (1 - 0): +0.5, -0.5, 0, +1.
  const std::vector<std::vector<uint8_t>> a = {{1, 1, 0, 1}, {1, 0, 0, 1}}, b = {{1, 1, 0, 0}, {0, 1, 0, 0}};
  const PairedDifference d = paired_difference(a, b);
  EXPECT_EQ(d.samples, 4);
  EXPECT_EQ(d.only_a, 2);
  EXPECT_EQ(d.only_b, 1);
  EXPECT_DOUBLE_EQ(d.difference, 0.25);
  // Sample variance of +0.5, -0.5, 0, +1 around 0.25: (0.0625 + 0.5625 + 0.0625 + 0.5625) / 3.
  const double half = 1.959964 * std::sqrt((1.25 / 3) / 4);
  EXPECT_NEAR(d.low, 0.25 - half, 1e-12);
  EXPECT_NEAR(d.high, 0.25 + half, 1e-12);
  // One run a side is the single-run difference; the sides may have different numbers of runs.
  const PairedDifference one = paired_difference(std::vector<std::vector<uint8_t>>{a[0]}, {b[0]});
  const PairedDifference single = paired_difference(a[0], b[0]);
  EXPECT_EQ(one.difference, single.difference);
  EXPECT_EQ(one.low, single.low);
  EXPECT_DOUBLE_EQ(paired_difference(a, {b[0]}).difference, 0.125);  // 0, -0.5, 0, +1
  testing::expect_error([&] { paired_difference(a, {}); }, ErrorKind::kInvalidArgument, {"at least one run"});
  testing::expect_error(
      [&] {
        paired_difference(a, {{1, 0}});
      },
      ErrorKind::kInvalidArgument, {"4 and 4 and 2 outcomes"});
}

TEST(PairedDifference, TIntervalOfAMeanOverSeeds) {
  // 1, 2, 3: mean 2, sample standard deviation 1, standard error 1/sqrt(3), t(2) = 4.303.
  const MeanInterval m = t_interval({1, 2, 3});
  EXPECT_DOUBLE_EQ(m.mean, 2);
  EXPECT_NEAR(m.high - m.mean, 4.303 / std::sqrt(3.0), 1e-9);
  EXPECT_NEAR(m.mean - m.low, 4.303 / std::sqrt(3.0), 1e-9);
  // Past the table, the expansion continues it: 2.042 at 30 degrees of freedom, 2.021 at 40, 1.984 at 100.
  for (const auto& [n, t] : std::vector<std::pair<int, double>>{{31, 2.042}, {41, 2.021}, {101, 1.984}}) {
    std::vector<double> v(static_cast<std::size_t>(n), 0.0);
    v[0] = 1;  // standard error sqrt(1/n * (1 - 1/n) * n/(n-1) / n) = 1/n
    const MeanInterval w = t_interval(v);
    EXPECT_NEAR((w.high - w.mean) * n, t, 0.001) << n;
  }
  EXPECT_EQ(t_interval({5, 5}).low, 5);
  testing::expect_error([] { t_interval({1}); }, ErrorKind::kInvalidArgument, {"1 values (need at least 2)"});
}

TEST(PairedDifference, OutcomesRoundTripThroughHex) {
  EXPECT_EQ(outcomes_to_hex({1, 0, 1, 1, 0, 0, 0, 1}), "b1");
  EXPECT_EQ(outcomes_to_hex({1, 1}), "c");
  std::vector<uint8_t> outcomes(1001);
  std::mt19937 rng(5);
  for (auto& o : outcomes) o = static_cast<uint8_t>(rng() & 1);
  EXPECT_EQ(outcomes_from_hex(outcomes_to_hex(outcomes), outcomes.size()), outcomes);
  testing::expect_error([] { outcomes_from_hex("b1", 9); }, ErrorKind::kInvalidArgument,
                        {"2 hex digits cannot hold 9 outcomes"});
  testing::expect_error([] { outcomes_from_hex("bg", 8); }, ErrorKind::kInvalidArgument, {"'g' is not a hex digit"});
  testing::expect_error([] { outcomes_from_hex("b", 3); }, ErrorKind::kInvalidArgument,
                        {"'b' sets bits after the last of 3"});
  for (int i = 0; i < 2000; ++i) {  // fuzzed: outcomes or one adze::Error, never anything else
    std::string hex(rng() % 6, ' ');
    for (char& c : hex) c = static_cast<char>(rng() % 128);
    try {
      EXPECT_EQ(outcomes_to_hex(outcomes_from_hex(hex, rng() % 24)), hex);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace adze

namespace adze {
namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// A training step's worth of blocks (ten of 6.4 MB, as a batch's activations), all freed at its end: glibc
// would trim the freed top of its heap and fault every page in again at the next step (about 15,600 faults a
// step here); kept, the steps after the first fault in nothing.
TEST(ProcessSettings, FreedMemoryIsReusedWithoutFaultingItInAgain) {
  ASSERT_TRUE(reuse_freed_memory());
  constexpr std::size_t kBlock = 6400000;
  long before = 0;
  for (int step = 0; step < 6; ++step) {
    if (step == 2) before = minor_faults();
    std::vector<char*> blocks;
    for (int i = 0; i < 10; ++i) {
      blocks.push_back(static_cast<char*>(std::malloc(kBlock)));
      std::memset(blocks.back(), step, kBlock);
    }
    for (char* b : blocks) std::free(b);
  }
  EXPECT_LT(minor_faults() - before, 200);
}

}  // namespace
}  // namespace adze
