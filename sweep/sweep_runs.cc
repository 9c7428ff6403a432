#include "sweep/sweep_runs.h"

#include <xxhash.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
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
#include "exporters/bench.h"
#include "exporters/exporter.h"
#include "exporters/verify.h"
#include "hardware/cost_model.h"
#include "hardware/target.h"
#include "model/frontend.h"
#include "model/layer_table.h"
#include "search/budget.h"
#include "search/search_run.h"
#include "search/search_state.h"

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
    const bool search = sweep.kind == "search";
    const std::string plan_path = search ? "" : a["plan"].get<std::string>();
    const std::string resolved_key = model_key + "|" + plan_path;
    if (!search) {
      if (!parsed_plans.count(plan_path))
        parsed_plans[plan_path] = checked("plan", a["plan"], [&] { return load_plan(plan_path); });
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
    }
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
      if (!search && !priced_plans.count(priced)) {
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
          if (search)  // the split the search measures sensitivity on
            load_data_for_model(model.path, input, spec, sweep.search["split"], sweep.search["limit"], 0);
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
        {"options", o}};
    if (search) {  // a search run: its settings and budget instead of a plan
      p.identity["kind"] = "search";
      p.identity["search"] = sweep.search;
      p.identity["budget"] = a["budget"];
    } else {
      p.identity["plan"] = plans.at(resolved_key);
    }
    p.identity["pipeline"] = pipelines.at(pipeline_path);
    p.identity["target"] = target;
    p.identity["seed"] = a["seed"];
    p.identity["export"] = sweep.exports;
    p.identity["verify"] = sweep.verify;
    if (!sweep.bench.is_null()) p.identity["bench"] = sweep.bench;
    p.id = xxh128_hex(p.identity.dump());
    if (ids.insert(p.id).second) out.push_back(std::move(p));
    bar.update(run.index + 1);
  }
  bar.finish();
  return out;
}

namespace {

// A search run's first part: the plan within its budget, as adze search finds it, in run_dir/search (resumed
// from its state when an earlier attempt was killed). Returns what the result records of it.
ordered_json search_plan(const PreparedRun& run, const CompressJob& job, const std::string& search_dir, bool progress) {
  const ordered_json& s = run.identity.at("search");
  const ordered_json& o = run.identity.at("options");
  SearchRunOptions r;
  r.space.model = job.model;
  r.space.input_shape = job.input_shape;
  r.space.input_dtype = job.input_dtype;
  r.space.data = job.data;
  r.space.split = s["split"];
  r.space.limit = s["limit"];
  r.space.bits = s["bits"].get<std::vector<int>>();
  r.space.nm = s["nm"].get<std::vector<std::string>>();
  r.space.act_bits = s["act_bits"].get<std::vector<int>>();
  r.space.decompose = s["decompose"].get<std::vector<std::string>>();
  r.space.probes = s["probes"];
  r.space.seed = job.seed;
  r.target = load_target(run.run.axes.at("target").get<std::string>());
  r.budget = parse_budget(run.identity.at("budget"));
  r.algo = s["algo"];
  r.algo_options = s["algo_options"];
  r.cost_model = s["cost_model"];
  r.exporter = s["exporter"];
  r.out = search_dir;
  r.resume = std::filesystem::exists(search_state_path(search_dir));
  if (!r.resume) std::filesystem::remove_all(search_dir);
  const std::string time_budget = s["time_budget"];
  r.time_budget_s = time_budget.empty() ? 0 : parse_duration(time_budget, "search.time_budget");
  r.batch = s["batch"];
  r.confirm = s["confirm"];
  r.confirmation.split = o["split"];
  r.confirmation.limit = o["limit"];
  r.confirmation.train_limit = o["train_limit"];
  r.confirmation.seed = job.seed;
  r.confirmation.progress = progress;
  r.pipeline = load_pipeline(job.pipeline);
  r.progress = progress;
  const SearchRun found = run_search(r);
  const Point& written = found.chosen ? *found.chosen : found.result.best;
  return {{"budget", r.budget.text},          {"satisfiable", found.result.satisfiable}, {"cost", written.cost},
          {"unit", unit_of(r.budget.metric)}, {"predicted_loss", written.loss},          {"written", found.written()},
          {"plan", "search/plan.json"}};
}

// Times the model and each export side by side, each in a fresh process of its own (adze bench's way).
ordered_json bench_exports(const ordered_json& settings, const std::string& model, const InputSpec& input,
                           const std::vector<std::string>& exports, const std::string& run_dir,
                           const std::string& adze) {
  FreshBench how;
  how.adze = adze;
  how.runs = settings["runs"];
  how.warmup = settings["warmup"];
  how.threads = settings["threads"];
  how.activations = settings["activations"];
  std::vector<std::string> paths = {model};
  for (const std::string& format : exports) paths.push_back(run_dir + "/" + export_name(format));
  std::vector<BenchResult> results;
  for (const std::string& path : paths) results.push_back(bench_in_fresh_process(how, path, input));
  nlohmann::json report = bench_report(results, input, how.runs, how.warmup);
  report["threads"] = how.threads;
  std::vector<std::string> names = {"model"};
  names.insert(names.end(), exports.begin(), exports.end());
  for (std::size_t i = 0; i < names.size(); ++i) {
    report["rows"][i]["name"] = names[i];
    report["rows"][i]["path"] = i == 0 ? model : export_name(names[i]);  // an export: in the run's directory
  }
  return ordered_json::parse(report.dump());
}

}  // namespace

ordered_json execute_run(const PreparedRun& run, const std::string& run_dir, const std::string& adze, bool progress) {
  const ordered_json& a = run.run.axes;
  const ordered_json& o = run.identity.at("options");
  const std::vector<std::string> exports = run.identity.at("export");
  const bool verify_exports = run.identity.at("verify");
  const bool search = run.identity.value("kind", "compress") == "search";
  std::filesystem::create_directories(run_dir);
  const std::string compressed = run_dir + "/compressed";
  std::filesystem::remove_all(compressed);  // an earlier attempt's, killed after writing it
  const ModelValue mv = model_value(a["model"]);
  CompressJob job;
  job.model = reference::resolve_model_path(mv.name);
  job.input_shape = mv.shape;
  job.input_dtype = mv.dtype;
  job.pipeline = a["pipeline"].get<std::string>();
  job.data = a.value("data", "");
  job.split = o["split"];
  job.train_split = o["train_split"];
  job.limit = o["limit"];
  job.train_limit = o["train_limit"];
  job.batch_size = o["batch_size"];
  job.seed = a["seed"].get<uint64_t>();
  job.out = compressed;
  ordered_json found;
  if (search) {
    found = search_plan(run, job, run_dir + "/search", progress);
    job.plan = run_dir + "/search/plan.json";
  } else {
    job.plan = a["plan"].get<std::string>();
  }
  const ordered_json report = run_compress_job(job, progress);
  ordered_json result;
  result["id"] = run.id;
  result["axes"] = a;
  if (search) result["search"] = found;
  result["metrics"] = report["metrics"];
  result["size"] = report["size"];
  if (report["metrics"].contains("after"))
    for (const auto& [key, value] : report["metrics"]["after"].items())
      if (value.is_number_float() && !std::isfinite(value.get<double>()))
        throw Error(ErrorKind::kInvalidArgument, "metric '" + key + "' after compression is " + value.dump());
  std::optional<CompressedModel> loaded;  // read once, by the cost and the exports, when either needs it
  if (a.contains("target") || !exports.empty()) {
    loaded = load_compressed(compressed, 1);
    loaded->dir = "runs/" + run.id + "/compressed";  // what exports record of their source: the same in every store
  }
  if (a.contains("target")) {
    const CompressedModel& m = *loaded;
    const auto roofline = cost_models().create("roofline", nlohmann::json::object(), "sweep");
    const ModelCost cost =
        model_cost(*roofline, load_target(a["target"].get<std::string>()), m.table, m.plan.layers, 1);
    result["cost"] = {{"target", a["target"]},       {"cost_model", "roofline"},  {"batch", 1},
                      {"latency_s", cost.latency_s}, {"energy_j", cost.energy_j}, {"weight_bytes", cost.weight_bytes}};
  }
  if (!exports.empty()) {
    const CompressedModel& m = *loaded;
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
  if (run.identity.contains("bench"))
    result["bench"] =
        bench_exports(run.identity["bench"], job.model, resolve_input_spec(job.model, job.input_shape, job.input_dtype),
                      exports, run_dir, adze);
  return result;
}

}  // namespace adze
