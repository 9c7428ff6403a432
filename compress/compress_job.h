// One `adze compress` as a library call: the files it names read and checked before any work, the run made
// (compress_run.h) and its directory written all or nothing. The CLI's compress command and each sweep run
// (sweep/) call it.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace adze {

class GradientSync;

struct CompressJob {
  std::string model;                     ///< a TorchScript file (reference names resolved by the caller)
  std::string input_shape, input_dtype;  ///< for a model without a card
  std::string plan, pipeline;            ///< files
  std::string data;                      ///< data SPEC for evaluation, calibration and fine-tuning ("": none)
  std::string split = "test", train_split = "train";
  int64_t limit = 0, train_limit = 0, batch_size = 0;
  uint64_t seed = 0;
  std::string out;  ///< the directory to write (must not exist)
  /// Data-parallel fine-tuning over these ranks (compress/gradient_sync.h); rank 0 alone writes `out`.
  std::shared_ptr<GradientSync> sync;
};

/// Runs the job and writes `job.out`; returns the report it wrote (report.json). Error as the parts throw it,
/// nothing written on failure.
nlohmann::ordered_json run_compress_job(const CompressJob& job, bool progress);

}  // namespace adze
