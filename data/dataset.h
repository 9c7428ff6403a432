// Datasets: what evaluation, calibration and fine-tuning read.
//
// A data SPEC names a source:
//   fmnist[:DIR]       Fashion-MNIST IDX files (gzipped), default /usr/share/datasets/fashion-mnist
//   fortunes | chars:DIR   a character corpus: every regular text file of DIR (default /usr/share/games/fortunes;
//                      binary index files and symlinks are skipped), bytes as tokens (vocabulary 256)
//   tensors:FILE       a file written by torch.save / torch::pickle_save holding {"inputs": X, "targets": Y}
//                      or a tuple (X, Y); targets are class indices
// Splits are deterministic: Fashion-MNIST train = the first 55,000 training images, val = the last 5,000,
// test = the 10,000 test images; a corpus is cut into 4 KiB chunks, every 20th chunk (index 18 mod 20) going
// to val and (19 mod 20) to test; tensor files split 80/10/10 in file order.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace adze {

enum class Task {
  kClassification,  ///< inputs [N, ...], targets [N] class indices
  kLanguageModel,   ///< inputs [N, T] token ids, targets [N, T] next tokens
};
const char* to_string(Task task);

struct DataOptions {
  std::string split = "test";  ///< train, val or test
  int64_t limit = 0;           ///< keep at most this many samples (0: all)
  int64_t seq_len = 128;       ///< window length for language-model data
};

struct Dataset {
  std::string name;  ///< e.g. "fmnist/test"
  Task task = Task::kClassification;
  at::Tensor inputs;        ///< float32 images or int64 tokens
  at::Tensor targets;       ///< int64
  int64_t num_classes = 0;  ///< classes or vocabulary size
  at::Tensor stream;        ///< language-model data: the whole split as one 1-D int64 token stream
  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
};

/// The files a SPEC reads, in a fixed order (what a run's identity hashes). Error(kInvalidArgument) for an
/// unknown source, Error(kIo) for a corpus directory that is not one.
std::vector<std::string> data_files(const std::string& spec);

/// Loads a SPEC (see above). Throws Error(kIo) naming the file for missing or malformed files, and
/// Error(kInvalidArgument) for an unknown source, split or an empty result.
Dataset load_dataset(const std::string& spec, const DataOptions& options);

/// Error(kInvalidArgument) unless `split` is train, val or test.
void check_split(const std::string& split);

}  // namespace adze
