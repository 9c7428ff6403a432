#include "compress/compress_run.h"

#include <iostream>

#include "compress/report.h"
#include "core/error.h"
#include "model/frontend.h"

namespace adze {

CompressRun compress_run(const std::string& path, const InputSpec& input, const Plan& plan,
                         const std::string& plan_source, const Pipeline& pipeline, const Dataset* data,
                         const Dataset* train_data, uint64_t seed, bool progress, std::vector<uint8_t>* after_outcomes,
                         const Metrics* before, std::shared_ptr<GradientSync> sync) {
  const bool trains = needs_training_data(pipeline);
  if (trains && !train_data)
    throw Error(ErrorKind::kInvalidArgument,
                "pipeline '" + pipeline.source + "' calibrates or fine-tunes: give --data (its --train-split is used)");
  CompressRun run;
  run.model = std::make_unique<Model>(load_torchscript(path, input));
  Model& model = *run.model;
  std::optional<Model> reference;
  if (trains) reference = load_torchscript(path, input);
  CompressionContext& context = run.context;
  context.model = &model;
  context.table = build_layer_table(model);
  context.plan = resolve_plan(plan, context.table, plan_source);
  for (const auto& w : context.plan.warnings) std::cerr << "adze: warning: " << w << "\n";
  context.data = data;
  context.train_data = trains ? train_data : nullptr;
  context.reference = reference ? &*reference : nullptr;
  context.seed = seed;
  context.sync = std::move(sync);
  context.progress = progress;

  // Metrics before and after bracket the pipeline unless it measures them itself.
  const auto has_label = [&](const std::string& label) {
    for (const auto& s : pipeline.steps)
      if (pass_registry().get(s.name, "pipeline '" + pipeline.source + "'").traits.evaluates &&
          s.options["label"] == label)
        return true;
    return false;
  };
  if (data && !has_label("before"))
    context.metrics["before"] = before ? *before : evaluate(model, *data, {model.traced_batch(), progress});
  std::vector<PassRecord> records = run_pipeline(pipeline, context);
  if (data && !context.metrics.count("after"))
    context.metrics["after"] = evaluate(model, *data, {model.traced_batch(), progress, after_outcomes});
  run.report = make_report(context, records);
  context.reference = nullptr;  // the teacher is gone with this call
  return run;
}

CompressedModel to_compressed_model(CompressRun run, std::string name) {
  CompressionContext& c = run.context;
  return CompressedModel{std::move(name),   std::move(*run.model),  std::move(c.table),
                         std::move(c.plan), std::move(c.encodings), nlohmann::json(run.report)};
}

}  // namespace adze
