#include "data/dataset.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "core/zip_bounds.h"
#include "data/idx.h"

namespace adze {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kFortunesDir = "/usr/share/games/fortunes";
constexpr int64_t kFashionMnistValSize = 5000;
constexpr int64_t kCorpusChunk = 4096;
// Fashion-MNIST pixel statistics over the training set, for inputs normalised to zero mean, unit variance.
constexpr double kFashionMnistMean = 0.2860;
constexpr double kFashionMnistStd = 0.3530;

Dataset load_fashion_mnist(const std::string& dir, const std::string& split) {
  if (!fs::is_directory(dir))
    throw Error(ErrorKind::kIo, "failed to open Fashion-MNIST directory '" + dir + "': not a directory");
  const std::string prefix = split == "test" ? "t10k" : "train";
  const std::string images_path = dir + "/" + prefix + "-images-idx3-ubyte.gz";
  const std::string labels_path = dir + "/" + prefix + "-labels-idx1-ubyte.gz";
  at::Tensor images = read_idx_file(images_path);
  at::Tensor labels = read_idx_file(labels_path);
  if (images.dim() != 3 || images.size(1) != 28 || images.size(2) != 28)
    throw Error(ErrorKind::kIo, "failed to read Fashion-MNIST images '" + images_path + "': shape " +
                                    c10::str(images.sizes()) + ", expected [N, 28, 28]");
  if (labels.dim() != 1 || labels.size(0) != images.size(0))
    throw Error(ErrorKind::kIo, "failed to read Fashion-MNIST labels '" + labels_path +
                                    "': " + std::to_string(labels.size(0)) + " labels for " +
                                    std::to_string(images.size(0)) + " images");
  if (labels.max().item<int>() > 9)
    throw Error(ErrorKind::kIo, "failed to read Fashion-MNIST labels '" + labels_path + "': label above 9");
  if (split != "test") {
    const int64_t n = images.size(0);
    if (n <= kFashionMnistValSize)
      throw Error(ErrorKind::kIo, "failed to split '" + images_path + "': only " + std::to_string(n) + " images");
    const int64_t cut = n - kFashionMnistValSize;
    images = split == "train" ? images.slice(0, 0, cut) : images.slice(0, cut, n);
    labels = split == "train" ? labels.slice(0, 0, cut) : labels.slice(0, cut, n);
  }
  Dataset d;
  d.name = "fmnist/" + split;
  d.task = Task::kClassification;
  d.inputs = ((images.to(torch::kFloat) / 255.0 - kFashionMnistMean) / kFashionMnistStd).unsqueeze(1).contiguous();
  d.targets = labels.to(torch::kLong).contiguous();
  d.num_classes = 10;
  return d;
}

// Every regular file in dir (sorted by name) that is text: symlinks (fortune's .u8 aliases), the .dat index
// files and anything containing NUL bytes are skipped.
std::vector<std::string> corpus_files(const std::string& dir) {
  if (!fs::is_directory(dir))
    throw Error(ErrorKind::kIo, "failed to open text corpus directory '" + dir + "': not a directory");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_symlink() || !entry.is_regular_file()) continue;
    if (entry.path().extension() == ".dat") continue;
    files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_corpus(const std::string& dir) {
  std::string corpus;
  for (const auto& f : corpus_files(dir)) {
    std::string text = read_file_text(f);
    if (text.find('\0') != std::string::npos) continue;
    corpus += text;
  }
  if (corpus.size() < 20 * kCorpusChunk)
    throw Error(ErrorKind::kIo, "failed to read text corpus '" + dir + "': found " + std::to_string(corpus.size()) +
                                    " bytes of text, expected at least " + std::to_string(20 * kCorpusChunk));
  return corpus;
}

Dataset load_corpus(const std::string& dir, const std::string& split, int64_t seq_len) {
  if (seq_len < 2)
    throw Error(ErrorKind::kInvalidArgument,
                "failed to cut text into windows of " + std::to_string(seq_len) + " tokens: need at least 2");
  const std::string corpus = read_corpus(dir);
  const int64_t want = split == "val" ? 18 : split == "test" ? 19 : -1;
  std::vector<int64_t> tokens;
  tokens.reserve(corpus.size());
  const int64_t chunks = (static_cast<int64_t>(corpus.size()) + kCorpusChunk - 1) / kCorpusChunk;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t slot = c % 20;
    const bool take = want < 0 ? slot < 18 : slot == want;
    if (!take) continue;
    const auto begin = static_cast<std::size_t>(c * kCorpusChunk);
    const auto end = std::min(corpus.size(), begin + static_cast<std::size_t>(kCorpusChunk));
    for (std::size_t i = begin; i < end; ++i) tokens.push_back(static_cast<unsigned char>(corpus[i]));
  }
  Dataset d;
  d.name = "chars/" + split;
  d.task = Task::kLanguageModel;
  d.num_classes = 256;
  d.stream = torch::tensor(tokens, torch::kLong);
  // Non-overlapping windows: inputs are tokens [i, i+T), targets [i+1, i+T+1).
  const int64_t windows = (d.stream.size(0) - 1) / seq_len;
  if (windows < 1)
    throw Error(ErrorKind::kInvalidArgument, "failed to cut split '" + split + "' of '" + dir + "' into windows of " +
                                                 std::to_string(seq_len) + " tokens: too little text");
  d.inputs = d.stream.slice(0, 0, windows * seq_len).view({windows, seq_len});
  d.targets = d.stream.slice(0, 1, windows * seq_len + 1).view({windows, seq_len});
  return d;
}

Dataset load_tensor_file(const std::string& path, const std::string& split) {
  const std::vector<char> bytes = read_file_bytes(path);
  check_torch_save_bounds({bytes.data(), bytes.size()}, "tensor file '" + path + "'");
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kIo,
                "failed to read tensor file '" + path + "': not a torch.save file (" + first_line_of(e) + ")");
  }
  at::Tensor inputs, targets;
  if (value.isGenericDict()) {
    auto dict = value.toGenericDict();
    for (const auto& key : {"inputs", "targets"})
      if (!dict.contains(key) || !dict.at(key).isTensor())
        throw Error(ErrorKind::kIo, "failed to read tensor file '" + path + "': missing tensor '" + key + "'");
    inputs = dict.at("inputs").toTensor();
    targets = dict.at("targets").toTensor();
  } else if (value.isTuple() && value.toTupleRef().elements().size() == 2 &&
             value.toTupleRef().elements()[0].isTensor() && value.toTupleRef().elements()[1].isTensor()) {
    inputs = value.toTupleRef().elements()[0].toTensor();
    targets = value.toTupleRef().elements()[1].toTensor();
  } else {
    throw Error(ErrorKind::kIo, "failed to read tensor file '" + path +
                                    "': expected a dict {\"inputs\", \"targets\"} or a tuple (inputs, targets)");
  }
  // Dense tensors of real numbers only: a quantized, complex or sparse one reaches ATen's internal assertions
  // (found by fuzzing: a QInt8Storage, whose slice asserted in ATen's quantizer).
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"inputs", inputs}, {"targets", targets}}) {
    const at::ScalarType type = t.scalar_type();
    if (t.layout() != at::kStrided || t.is_quantized() || !(at::isFloatingType(type) || at::isIntegralType(type, true)))
      throw Error(ErrorKind::kIo, "failed to read tensor file '" + path + "': tensor '" + name + "' holds " +
                                      c10::toString(type) + (t.layout() != at::kStrided ? " (sparse)" : "") +
                                      ", expected a dense tensor of real numbers");
  }
  // A tensor may claim more elements than its data holds (a zero stride repeats one element), or reach past its
  // data (an offset, a stride): refused before anything materializes it (found by fuzzing: a 1 KB file that asked
  // for 4 GB; a view 1788 bytes into 60).
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"inputs", inputs}, {"targets", targets}}) {
    double last = static_cast<double>(t.storage_offset());  // the furthest element the view reads
    for (int64_t d = 0; d < t.dim(); ++d) last += static_cast<double>(t.size(d) - 1) * static_cast<double>(t.stride(d));
    const double bytes = static_cast<double>(t.storage().nbytes()), item = static_cast<double>(t.element_size());
    if (t.numel() > 0 && (static_cast<double>(t.numel()) * item > bytes || (last + 1) * item > bytes))
      throw Error(ErrorKind::kIo, "failed to read tensor file '" + path + "': tensor '" + name + "' of shape " +
                                      c10::str(t.sizes()) + " claims more elements than its data holds (" +
                                      std::to_string(t.storage().nbytes()) + " bytes)");
  }
  if (inputs.dim() < 1 || targets.dim() != 1 || inputs.size(0) != targets.size(0))
    throw Error(ErrorKind::kIo, "failed to read tensor file '" + path + "': inputs " + c10::str(inputs.sizes()) +
                                    " and targets " + c10::str(targets.sizes()) +
                                    " do not match (expected targets [N] for inputs [N, ...])");
  if (at::isFloatingType(targets.scalar_type()))
    throw Error(ErrorKind::kIo, "failed to read tensor file '" + path + "': targets must be integer class indices");
  if (at::isFloatingType(inputs.scalar_type()) && !torch::isfinite(inputs).all().item<bool>())
    throw Error(ErrorKind::kIo, "failed to read tensor file '" + path + "': inputs contain NaN or Inf");
  if (targets.numel() > 0 && targets.min().item<int64_t>() < 0)
    throw Error(ErrorKind::kIo, "failed to read tensor file '" + path + "': negative class index in targets");
  const int64_t n = inputs.size(0);
  const int64_t train_end = n * 8 / 10, val_end = n * 9 / 10;
  const int64_t begin = split == "train" ? 0 : split == "val" ? train_end : val_end;
  const int64_t end = split == "train" ? train_end : split == "val" ? val_end : n;
  Dataset d;
  d.name = "tensors/" + split;
  d.task = Task::kClassification;
  d.inputs = inputs.slice(0, begin, end).contiguous();
  d.targets = targets.to(torch::kLong).slice(0, begin, end).contiguous();
  d.num_classes = targets.numel() ? targets.max().item<int64_t>() + 1 : 0;
  return d;
}

}  // namespace

void check_split(const std::string& split) {
  if (split != "train" && split != "val" && split != "test")
    throw Error(ErrorKind::kInvalidArgument, "failed to select split '" + split + "': expected train, val or test");
}

const char* to_string(Task task) { return task == Task::kClassification ? "classification" : "language-model"; }

std::vector<std::string> data_files(const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string source = spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (source == "fmnist") {
    const std::string dir = arg.empty() ? kFashionMnistDir : arg;
    std::vector<std::string> files;
    for (const char* prefix : {"t10k", "train"})
      for (const char* part : {"images-idx3", "labels-idx1"})
        files.push_back(dir + "/" + prefix + "-" + part + "-ubyte.gz");
    return files;
  }
  if (source == "fortunes" || (source == "chars" && !arg.empty()))
    return corpus_files(arg.empty() ? kFortunesDir : arg);
  if (source == "tensors" && !arg.empty()) return {arg};
  throw Error(ErrorKind::kInvalidArgument, "failed to parse data spec '" + spec + "': unknown source '" + source +
                                               "' (expected fmnist[:DIR], fortunes, chars:DIR or tensors:FILE)");
}

Dataset load_dataset(const std::string& spec, const DataOptions& options) {
  check_split(options.split);
  if (options.limit < 0)
    throw Error(ErrorKind::kInvalidArgument,
                "failed to apply --limit " + std::to_string(options.limit) + ": must be 0 (all) or positive");
  const auto colon = spec.find(':');
  const std::string source = spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  Dataset d;
  if (source == "fmnist") {
    d = load_fashion_mnist(arg.empty() ? kFashionMnistDir : arg, options.split);
  } else if (source == "fortunes" || source == "chars") {
    if (source == "chars" && arg.empty())
      throw Error(ErrorKind::kInvalidArgument,
                  "failed to parse data spec '" + spec + "': chars needs a directory (chars:DIR)");
    d = load_corpus(arg.empty() ? kFortunesDir : arg, options.split, options.seq_len);
  } else if (source == "tensors") {
    if (arg.empty())
      throw Error(ErrorKind::kInvalidArgument,
                  "failed to parse data spec '" + spec + "': tensors needs a file (tensors:FILE)");
    d = load_tensor_file(arg, options.split);
  } else {
    throw Error(ErrorKind::kInvalidArgument, "failed to parse data spec '" + spec + "': unknown source '" + source +
                                                 "' (expected fmnist[:DIR], fortunes, chars:DIR or tensors:FILE)");
  }
  if (options.limit > 0 && d.size() > options.limit) {
    d.inputs = d.inputs.slice(0, 0, options.limit);
    d.targets = d.targets.slice(0, 0, options.limit);
  }
  if (d.size() == 0)
    throw Error(ErrorKind::kInvalidArgument,
                "failed to load data '" + spec + "' split '" + options.split + "': it is empty");
  return d;
}

}  // namespace adze
