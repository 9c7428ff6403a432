#include "sweep/sweep_runs.h"

#include <xxhash.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "compress/compress_job.h"
#include "compress/compressed_model.h"
#include "compress/pass.h"
#include "compress/plan.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/shape.h"
#include "data/model_data.h"
#include "examples/reference/reference.h"
#include "exporters/exporter.h"
#include "exporters/verify.h"
#include "hardware/cost_model.h"
#include "hardware/target.h"
#include "model/frontend.h"
#include "model/layer_table.h"

namespace adze {
namespace {

using nlohmann::ordered_json;

std::string text_of(const ordered_json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The model axis's value as a path and an input spec.
struct ModelValue {
  std::string name, shape, dtype;
};
ModelValue model_value(const ordered_json& v) {
  if (v.is_string()) return {v.get<std::string>(), "", ""};
  return {v.at("path").get<std::string>(), v.value("input_shape", ""), v.value("input_dtype", "")};
}

std::string file_hash(const std::string& path) {
  const std::vector<char> bytes = read_file_bytes(path);
  return xxh128_hex(std::string(bytes.begin(), bytes.end()));
}

// What one model value loads to, once per sweep.
struct LoadedModel {
  std::string path, hash;
  InputSpec input;
  LayerTable table;
};

// The file a format's export is written to, inside a run's directory.
std::string export_name(const std::string& format) {
  if (format == "onnx") return "model.onnx";
  if (format == "torchscript") return "model.pt";
  if (format == "packed") return "model.adze";
  return "export-" + format;
}

}  // namespace

std::string xxh128_hex(const std::string& bytes) {
  const XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return out;
}

std::vector<PreparedRun> prepare_runs(const SweepFile& sweep, bool progress) {
  const std::vector<SweepRun> runs = expand_sweep(sweep);
  const ordered_json& o = sweep.options;
  // Each value is checked once, where it first occurs, and the error names the file, axis and value.
  const auto checked = [&](const std::string& axis, const ordered_json& value, const auto& load) {
    try {
      return load();
    } catch (const Error& e) {
      throw Error(ErrorKind::kInvalidConfig,
                  "invalid sweep '" + sweep.path + "': axis '" + axis + "' value " + text_of(value) + ": " + e.what());
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kInvalidConfig, "invalid sweep '" + sweep.path + "': axis '" + axis + "' value " +
                                                 text_of(value) + ": " + first_line_of(e));
    }
  };
  std::map<std::string, LoadedModel> models;
  std::map<std::string, ordered_json> plans, pipelines, targets, data;
  std::map<std::string, Plan> parsed_plans;
  std::map<std::string, ResolvedPlan> resolved_plans;  // model|plan
  std::map<std::string, bool> trains;
  std::set<std::string> priced_plans;  // model|plan|target checked
  std::vector<PreparedRun> out;
  std::set<std::string> ids;
  ProgressBar bar("checking the sweep", static_cast<int64_t>(runs.size()), progress);
  for (const SweepRun& run : runs) {
    const ordered_json& a = run.axes;
    const std::string model_key = a["model"].dump();
    if (!models.count(model_key))
      models[model_key] = checked("model", a["model"], [&] {
        const ModelValue mv = model_value(a["model"]);
        LoadedModel m;
        m.path = reference::resolve_model_path(mv.name);
        m.input = resolve_input_spec(m.path, mv.shape, mv.dtype);
        m.table = build_layer_table(load_torchscript(m.path, m.input));
        m.hash = file_hash(m.path);
        return m;
      });
    const LoadedModel& model = models.at(model_key);
    const std::string plan_path = a["plan"].get<std::string>();
    if (!parsed_plans.count(plan_path))
      parsed_plans[plan_path] = checked("plan", a["plan"], [&] { return load_plan(plan_path); });
    const std::string resolved_key = model_key + "|" + plan_path;
    if (!plans.count(resolved_key))
      plans[resolved_key] = checked("plan", a["plan"], [&] {
        const ResolvedPlan& resolved = resolved_plans[resolved_key] =
            resolve_plan(parsed_plans.at(plan_path), model.table, plan_path);
        for (const std::string& format : sweep.exports) {
          const auto exporter = exporter_registry().create(format, nlohmann::json::object(), "export");
          std::string refused;
          for (const auto& [layer, config] : resolved.layers)
            for (const Violation& v : check_layer_config(exporter->contract(), layer, config))
              refused += (refused.empty() ? "" : "; ") + v.to_string();
          if (!refused.empty()) throw Error(ErrorKind::kUnsupported, "export " + format + " refuses it: " + refused);
        }
        return to_json(resolved);
      });
    const std::string pipeline_path = a["pipeline"].get<std::string>();
    if (!pipelines.count(pipeline_path))
      pipelines[pipeline_path] = checked("pipeline", a["pipeline"], [&] {
        const Pipeline p = load_pipeline(pipeline_path);
        trains[pipeline_path] = needs_training_data(p);
        ordered_json steps = ordered_json::array();
        for (const auto& s : p.steps) steps.push_back({{"name", s.name}, {"options", s.options}});
        return steps;
      });
    ordered_json target = nullptr;
    if (a.contains("target")) {
      const std::string name = a["target"].get<std::string>();
      if (!targets.count(name))
        targets[name] = checked("target", a["target"], [&] { return ordered_json(to_json(load_target(name))); });
      target = targets.at(name);
      const std::string priced = resolved_key + "|" + name;  // the plan runs on the target (its cost is reported)
      if (!priced_plans.count(priced)) {
        checked("plan", a["plan"], [&] {
          const ResolvedPlan& resolved = resolved_plans.at(resolved_key);  // resolved once, above
          const auto roofline = cost_models().create("roofline", nlohmann::json::object(), "sweep");
          model_cost(*roofline, load_target(name), model.table, resolved.layers, 1);
          return 0;
        });
        priced_plans.insert(priced);
      }
    }
    ordered_json data_identity = nullptr;
    if (a.contains("data")) {
      const std::string spec = a["data"].get<std::string>();
      const std::string key = model_key + "|" + spec;
      if (!data.count(key))
        data[key] = checked("data", a["data"], [&] {
          InputSpec input = model.input;
          load_data_for_model(model.path, input, spec, o["split"], o["limit"], o["batch_size"]);
          ordered_json files = ordered_json::object();
          for (const std::string& f : data_files(spec)) files[f] = file_hash(f);
          return ordered_json{{"spec", spec}, {"files", files}};
        });
      data_identity = data.at(key);
    } else if (sweep.verify) {
      throw Error(ErrorKind::kInvalidConfig, "invalid sweep '" + sweep.path +
                                                 "': verify: true needs a 'data' axis "
                                                 "to verify on (run " +
                                                 describe_axes(a) + " has none)");
    } else if (trains.at(pipeline_path)) {
      throw Error(ErrorKind::kInvalidConfig, "invalid sweep '" + sweep.path + "': axis 'pipeline' value " +
                                                 pipeline_path +
                                                 ": it calibrates or fine-tunes, and the run has no "
                                                 "'data' axis to learn from");
    }
    PreparedRun p;
    p.run = run;
    p.identity = {
        {"adze", ADZE_VERSION},
        {"model", {{"bytes", model.hash}, {"input", shape_to_string(model.input.shape)}, {"dtype", model.input.dtype}}},
        {"data", data_identity},
        {"options", o},
        {"plan", plans.at(resolved_key)},
        {"pipeline", pipelines.at(pipeline_path)},
        {"target", target},
        {"seed", a["seed"]},
        {"export", sweep.exports},
        {"verify", sweep.verify}};
    p.id = xxh128_hex(p.identity.dump());
    if (ids.insert(p.id).second) out.push_back(std::move(p));
    bar.update(run.index + 1);
  }
  bar.finish();
  return out;
}

ordered_json execute_run(const PreparedRun& run, const std::string& run_dir, bool progress) {
  const ordered_json& a = run.run.axes;
  const ordered_json& o = run.identity.at("options");
  const std::vector<std::string> exports = run.identity.at("export");
  const bool verify_exports = run.identity.at("verify");
  std::filesystem::create_directories(run_dir);
  const std::string compressed = run_dir + "/compressed";
  std::filesystem::remove_all(compressed);  // an earlier attempt's, killed after writing it
  const ModelValue mv = model_value(a["model"]);
  CompressJob job;
  job.model = reference::resolve_model_path(mv.name);
  job.input_shape = mv.shape;
  job.input_dtype = mv.dtype;
  job.plan = a["plan"].get<std::string>();
  job.pipeline = a["pipeline"].get<std::string>();
  job.data = a.value("data", "");
  job.split = o["split"];
  job.train_split = o["train_split"];
  job.limit = o["limit"];
  job.train_limit = o["train_limit"];
  job.batch_size = o["batch_size"];
  job.seed = a["seed"].get<uint64_t>();
  job.out = compressed;
  const ordered_json report = run_compress_job(job, progress);
  ordered_json result;
  result["id"] = run.id;
  result["axes"] = a;
  result["metrics"] = report["metrics"];
  result["size"] = report["size"];
  if (report["metrics"].contains("after"))
    for (const auto& [key, value] : report["metrics"]["after"].items())
      if (value.is_number_float() && !std::isfinite(value.get<double>()))
        throw Error(ErrorKind::kInvalidArgument, "metric '" + key + "' after compression is " + value.dump());
  if (a.contains("target")) {
    const CompressedModel m = load_compressed(compressed, 1);
    const auto roofline = cost_models().create("roofline", nlohmann::json::object(), "sweep");
    const ModelCost cost =
        model_cost(*roofline, load_target(a["target"].get<std::string>()), m.table, m.plan.layers, 1);
    result["cost"] = {{"target", a["target"]},       {"cost_model", "roofline"},  {"batch", 1},
                      {"latency_s", cost.latency_s}, {"energy_j", cost.energy_j}, {"weight_bytes", cost.weight_bytes}};
  }
  if (!exports.empty()) {
    CompressedModel m = load_compressed(compressed, 1);
    m.dir = "runs/" + run.id + "/compressed";  // what exports record of their source: the same in every store
    ordered_json written = ordered_json::object();
    for (const std::string& format : exports) {
      const std::string path = run_dir + "/" + export_name(format);
      std::filesystem::remove_all(path);
      export_model(m, format, nlohmann::json::object(), path);
      ordered_json e = {{"file", export_name(format)}};
      if (std::filesystem::is_regular_file(path)) e["bytes"] = std::filesystem::file_size(path);
      if (verify_exports) {
        VerifyOptions v;
        v.exported = path;
        v.against = compressed;
        v.data = job.data;
        v.split = job.split;
        v.limit = job.limit;
        const Verification verdict = verify(v);
        e["verify"] = {{"pass", verdict.pass},
                       {"cosine", verdict.cosine},
                       {"argmax_agreement", verdict.argmax_agreement},
                       {"max_abs_diff", verdict.max_abs_diff}};
      }
      written[format] = std::move(e);
    }
    result["exports"] = std::move(written);
  }
  return result;
}

}  // namespace adze
