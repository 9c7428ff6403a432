#include "compress/compress_job.h"

#include <optional>

#include "compress/compress_run.h"
#include "compress/compressed_model.h"
#include "compress/gradient_sync.h"
#include "core/error.h"
#include "core/files.h"
#include "data/model_data.h"

namespace adze {

nlohmann::ordered_json run_compress_job(const CompressJob& job, bool progress) {
  // Everything the user handed us is checked before any work.
  require_new_output(job.out, "--out");
  InputSpec input = resolve_input_spec(job.model, job.input_shape, job.input_dtype);
  Plan plan = load_plan(job.plan);
  Pipeline pipeline = load_pipeline(job.pipeline);
  std::optional<Dataset> data, train_data;
  if (!job.data.empty()) data = load_data_for_model(job.model, input, job.data, job.split, job.limit, job.batch_size);
  if (needs_training_data(pipeline) && data) {  // without data, compress_run says what is missing
    if (job.train_limit < 0)
      throw Error(ErrorKind::kInvalidArgument,
                  "--train-limit " + std::to_string(job.train_limit) + ": must be 0 (all) or positive");
    InputSpec train_input = input;
    train_data =
        load_data_for_model(job.model, train_input, job.data, job.train_split, job.train_limit, job.batch_size);
  }
  CompressRun run = compress_run(job.model, input, plan, job.plan, pipeline, data ? &*data : nullptr,
                                 train_data ? &*train_data : nullptr, job.seed, progress, nullptr, nullptr, job.sync);
  nlohmann::ordered_json& report = run.report;
  report["model"] = job.model;
  report["plan"] = job.plan;
  report["pipeline"] = job.pipeline;
  if (data) report["data"] = {{"spec", job.data}, {"split", job.split}, {"samples", data->size()}};
  if (train_data)
    report["train_data"] = {{"spec", job.data}, {"split", job.train_split}, {"samples", train_data->size()}};
  report["seed"] = job.seed;
  if (!job.sync || job.sync->rank() == 0)
    save_compressed(*run.model, run.context.plan, run.context.encodings, report, job.model, job.out);
  return report;
}

}  // namespace adze
