#include "data/dataset.h"

#include <gtest/gtest.h>
#include <torch/serialize.h>
#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/files.h"
#include "data/idx.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;
using testing::fixture;
using testing::TempDir;

constexpr const char* kFmnist = "/usr/share/datasets/fashion-mnist";

void write_gz(const std::string& path, const std::vector<unsigned char>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

std::vector<unsigned char> idx_bytes(std::vector<uint32_t> dims, std::size_t payload) {
  std::vector<unsigned char> b = {0, 0, 0x08, static_cast<unsigned char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<unsigned char>(d >> shift));
  for (std::size_t i = 0; i < payload; ++i) b.push_back(static_cast<unsigned char>(i % 10));
  return b;
}

TEST(FashionMnist, SplitsAreDeterministicAndNormalised) {
  Dataset train = load_dataset("fmnist", {"train", 0, 0});
  Dataset val = load_dataset("fmnist", {"val", 0, 0});
  Dataset test = load_dataset("fmnist", {"test", 0, 0});
  EXPECT_EQ(train.size(), 55000);
  EXPECT_EQ(val.size(), 5000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(train.inputs.sizes(), (std::vector<int64_t>{55000, 1, 28, 28}));
  EXPECT_EQ(train.task, Task::kClassification);
  EXPECT_NEAR(train.inputs.mean().item<double>(), 0.0, 0.02);
  EXPECT_NEAR(train.inputs.std().item<double>(), 1.0, 0.02);
  EXPECT_EQ(test.targets.min().item<int64_t>(), 0);
  EXPECT_EQ(test.targets.max().item<int64_t>(), 9);
  EXPECT_TRUE(torch::equal(load_dataset("fmnist:" + std::string(kFmnist), {"val", 0, 0}).inputs, val.inputs));
  EXPECT_EQ(load_dataset("fmnist", {"test", 123, 0}).size(), 123);
}

TEST(FashionMnist, NamesMissingAndBrokenFiles) {
  TempDir dir;
  expect_error(
      [&] {
        load_dataset("fmnist:" + dir.file("nope"), {"test", 0, 0});
      },
      ErrorKind::kIo, {"nope", "not a directory"});
  expect_error(
      [&] {
        load_dataset("fmnist:" + dir.path(), {"test", 0, 0});
      },
      ErrorKind::kIo, {"t10k-images-idx3-ubyte.gz", "no such file"});
  write_gz(dir.file("t10k-images-idx3-ubyte.gz"), idx_bytes({10, 28, 28}, 10 * 28 * 28 - 5));
  expect_error([&] { read_idx_file(dir.file("t10k-images-idx3-ubyte.gz")); }, ErrorKind::kIo,
               {"t10k-images-idx3-ubyte.gz", "truncated payload", "expected 7840 bytes"});
  write_gz(dir.file("t10k-images-idx3-ubyte.gz"), idx_bytes({10, 28, 28}, 10 * 28 * 28));
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx_bytes({9}, 9));
  expect_error(
      [&] {
        load_dataset("fmnist:" + dir.path(), {"test", 0, 0});
      },
      ErrorKind::kIo, {"9 labels for 10 images"});
  std::ofstream(dir.file("bad.gz")) << "PK not an idx";
  expect_error([&] { read_idx_file(dir.file("bad.gz")); }, ErrorKind::kIo, {"bad.gz", "bad magic"});
}

TEST(IdxReader, FuzzedHeadersNeverCrash) {
  TempDir dir;
  std::mt19937 rng(7);
  const auto valid = idx_bytes({3, 4, 5}, 60);
  for (int i = 0; i < 300; ++i) {
    auto bytes = valid;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % 16] = static_cast<unsigned char>(rng());
    bytes.resize(rng() % (bytes.size() + 1));
    std::ofstream(dir.file("f.idx"), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    try {
      at::Tensor t = read_idx_file(dir.file("f.idx"));
      EXPECT_GT(t.numel(), 0);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kIo);
    }
  }
}

TEST(TextCorpus, SkipsIndexFilesSymlinksAndBinaryAndSplitsDisjointly) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 30000; ++i) text += "line " + std::to_string(i) + " of a fortune\n%\n";
  std::ofstream(dir.file("a")) << text;
  std::ofstream(dir.file("a.dat"), std::ios::binary) << std::string("\x01\x02\x00\xff", 4);
  std::ofstream(dir.file("binary"), std::ios::binary) << std::string("abc\0def", 7);
  std::filesystem::create_symlink(dir.file("a"), dir.file("a.u8"));
  Dataset train = load_dataset("chars:" + dir.path(), {"train", 0, 64});
  Dataset val = load_dataset("chars:" + dir.path(), {"val", 0, 64});
  Dataset test = load_dataset("chars:" + dir.path(), {"test", 0, 64});
  const int64_t total = train.stream.size(0) + val.stream.size(0) + test.stream.size(0);
  EXPECT_EQ(total, static_cast<int64_t>(text.size()));  // only file "a", once
  EXPECT_NEAR(static_cast<double>(val.stream.size(0)) / static_cast<double>(total), 0.05, 0.01);
  EXPECT_EQ(train.task, Task::kLanguageModel);
  EXPECT_EQ(val.inputs.size(1), 64);
  EXPECT_TRUE(torch::equal(val.inputs[0].slice(0, 1), val.targets[0].slice(0, 0, 63)));  // targets are shifted inputs
}

TEST(TextCorpus, FortunesLoadAndNameAnEmptyDirectory) {
  Dataset val = load_dataset("fortunes", {"val", 0, 128});
  EXPECT_GT(val.size(), 500);
  EXPECT_EQ(val.num_classes, 256);
  TempDir dir;
  expect_error(
      [&] {
        load_dataset("chars:" + dir.path(), {"val", 0, 128});
      },
      ErrorKind::kIo, {dir.path(), "bytes of text"});
  expect_error([&] { load_dataset("chars", {"val", 0, 128}); }, ErrorKind::kInvalidArgument, {"chars:DIR"});
}

TEST(TensorFile, ReadsPythonTorchSaveAndSplits) {
  const std::string spec = "tensors:" + fixture("tensors_small.pt");
  Dataset train = load_dataset(spec, {"train", 0, 0});
  Dataset test = load_dataset(spec, {"test", 0, 0});
  EXPECT_EQ(train.size(), 40);
  EXPECT_EQ(test.size(), 5);
  EXPECT_EQ(train.inputs.sizes(), (std::vector<int64_t>{40, 3, 16, 16}));
  EXPECT_EQ(train.targets.scalar_type(), torch::kLong);
}

TEST(TensorFile, RejectsWrongContents) {
  TempDir dir;
  auto save = [&](const std::string& name, const c10::IValue& v) {
    auto bytes = torch::pickle_save(v);
    std::ofstream(dir.file(name), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return "tensors:" + dir.file(name);
  };
  c10::Dict<std::string, at::Tensor> nan;
  nan.insert("inputs", torch::full({4, 2}, std::nan("")));
  nan.insert("targets", torch::zeros({4}, torch::kLong));
  expect_error([&] { load_dataset(save("nan.pt", nan), {"test", 0, 0}); }, ErrorKind::kIo, {"nan.pt", "NaN"});
  c10::Dict<std::string, at::Tensor> mismatch;
  mismatch.insert("inputs", torch::zeros({4, 2}));
  mismatch.insert("targets", torch::zeros({3}, torch::kLong));
  expect_error([&] { load_dataset(save("mismatch.pt", mismatch), {"test", 0, 0}); }, ErrorKind::kIo, {"do not match"});
  c10::Dict<std::string, at::Tensor> repeated;  // found by fuzzing: a zero stride claims more than the data holds
  repeated.insert("inputs", torch::zeros({1, 2}).expand({1000000, 2}));
  repeated.insert("targets", torch::zeros({1}, torch::kLong).expand({1000000}));
  expect_error(
      [&] {
        load_dataset(save("repeated.pt", repeated), {"test", 0, 0});
      },
      ErrorKind::kIo,
      {"repeated.pt", "tensor 'inputs' of shape [1000000, 2] claims more elements than its data holds"});
  // Found by fuzzing: a view whose offset and strides reach past its storage of 60 bytes (a file pickle_save
  // cannot write: libtorch checks the bounds only when a view is made, not when it is read).
  const std::string past = std::string(testing::source_dir()) + "/tests/fuzz/corpus/tensors/view-past-its-data";
  expect_error(
      [&] {
        load_dataset("tensors:" + past, {"test", 0, 0});
      },
      ErrorKind::kIo,
      {"view-past-its-data", "tensor 'inputs' of shape [3, 5] claims more elements than its data holds (60 bytes)"});
  // Found by fuzzing: a quantized tensor, which ATen's slice asserted on.
  c10::Dict<std::string, at::Tensor> quantized;
  quantized.insert("inputs", torch::quantize_per_tensor(torch::zeros({4, 2}), 0.1, 0, torch::kQInt8));
  quantized.insert("targets", torch::zeros({4}, torch::kLong));
  expect_error(
      [&] {
        load_dataset(save("quantized.pt", quantized), {"test", 0, 0});
      },
      ErrorKind::kIo, {"quantized.pt", "tensor 'inputs' holds QInt8, expected a dense tensor of real numbers"});
  const std::string storage = std::string(testing::source_dir()) + "/tests/fuzz/corpus/tensors/quantized-storage";
  expect_error([&] { load_dataset("tensors:" + storage, {"test", 0, 0}); }, ErrorKind::kIo, {"quantized-storage"});
  c10::Dict<std::string, at::Tensor> missing;
  missing.insert("x", torch::zeros({4, 2}));
  expect_error(
      [&] {
        load_dataset(save("missing.pt", missing), {"test", 0, 0});
      },
      ErrorKind::kIo, {"missing tensor 'inputs'"});
  std::ofstream(dir.file("junk.pt")) << "junk";
  expect_error(
      [&] {
        load_dataset("tensors:" + dir.file("junk.pt"), {"test", 0, 0});
      },
      ErrorKind::kIo, {"junk.pt", "torch.save"});
}

TEST(DataSpec, RejectsUnknownSourcesSplitsAndLimits) {
  expect_error(
      [] {
        load_dataset("imagenet", {"test", 0, 0});
      },
      ErrorKind::kInvalidArgument, {"unknown source 'imagenet'"});
  expect_error([] { load_dataset("fmnist", {"dev", 0, 0}); }, ErrorKind::kInvalidArgument, {"split 'dev'"});
  expect_error([] { load_dataset("fmnist", {"test", -1, 0}); }, ErrorKind::kInvalidArgument, {"--limit"});
}

}  // namespace
}  // namespace adze
