// adze compress MODEL --plan PLAN --pipeline PIPELINE [--data SPEC] --out DIR
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "compress/compress_job.h"
#include "compress/gradient_sync.h"
#include "core/error.h"
#include "core/table.h"
#include "distributed/gloo_sync.h"
#include "distributed/mpi_sync.h"

namespace adze::cli {
namespace {

struct CompressOptions {
  std::string model, plan, pipeline, data, out;
  std::string split = "test";
  std::string train_split = "train";
  int64_t limit = 0;
  int64_t train_limit = 0;
  uint64_t seed = 0;
  int64_t batch_size = 0;
  std::string input_shape, input_dtype;
  bool json = false;
  bool data_parallel = false;
  std::string backend = "gloo";
};

void print_summary(const nlohmann::ordered_json& report, const std::string& out) {
  Table quality;
  quality.add_column("metric");
  quality.add_column("before", Table::Align::kRight);
  quality.add_column("after", Table::Align::kRight);
  const auto& m = report["metrics"];
  for (const char* key : {"top1", "cross_entropy", "bits_per_char"}) {
    if (!m.contains("after") || !m["after"].contains(key)) continue;
    auto cell = [&](const char* label) {
      return m.contains(label) ? fixed(m[label][key].get<double>(), 4) : std::string("-");
    };
    quality.add_row({key, cell("before"), cell("after")});
  }
  if (m.contains("after")) {
    quality.print(std::cout);
    std::cout << "\n";
  }
  Table layers;
  layers.add_column("layer");
  layers.add_column("bits", Table::Align::kRight);
  layers.add_column("N:M");
  layers.add_column("decomposition");
  layers.add_column("sparsity", Table::Align::kRight);
  layers.add_column("SQNR dB", Table::Align::kRight);
  layers.add_column("bits/weight", Table::Align::kRight);
  for (const auto& l : report["layers"])
    layers.add_row({l["name"].get<std::string>(), std::to_string(l["weight_bits"].get<int>()),
                    l["nm"].get<std::string>(), l["decompose"].get<std::string>(),
                    percent(l["sparsity"].get<double>(), 1),
                    l["sqnr_db"].is_null() ? "lossless" : fixed(l["sqnr_db"].get<double>(), 1),
                    fixed(l["bits_per_weight"].get<double>(), 2)});
  layers.print(std::cout);
  const auto& s = report["size"];
  std::cout << "\nsize " << human_bytes(s["original_bytes"].get<double>()) << " -> "
            << human_bytes(s["compressed_bytes"].get<double>()) << " (" << fixed(s["ratio"].get<double>(), 2)
            << "x smaller), written to " << out << "\n";
}

void run_compress(const CompressOptions& o) {
  CompressJob job;
  job.model = resolve_model_path(o.model);
  job.input_shape = o.input_shape;
  job.input_dtype = o.input_dtype;
  job.plan = o.plan;
  job.pipeline = o.pipeline;
  job.data = o.data;
  job.split = o.split;
  job.train_split = o.train_split;
  job.limit = o.limit;
  job.train_limit = o.train_limit;
  job.batch_size = o.batch_size;
  job.seed = o.seed;
  job.out = o.out;
  if (o.data_parallel && o.backend == "mpi") {
    job.sync = mpi_gradient_sync();
  } else if (o.data_parallel) {
    const auto rendezvous = rendezvous_from_environment();
    if (!rendezvous)
      throw Error(ErrorKind::kInvalidArgument,
                  "--data-parallel needs ranks: run under mpirun, or set ADZE_WORLD_SIZE and ADZE_RANK");
    job.sync = gloo_gradient_sync(*rendezvous);
  } else if (o.backend != "gloo") {
    throw Error(ErrorKind::kInvalidArgument, "--data-parallel-backend " + o.backend + " needs --data-parallel");
  }
  const bool writes = !job.sync || job.sync->rank() == 0;
  const nlohmann::ordered_json report = run_compress_job(job, show_progress(o.json) && writes);
  if (!writes) return;
  if (o.json)
    std::cout << report.dump(2) << "\n";
  else
    print_summary(report, o.out);
}

}  // namespace

void setup_compress(CLI::App& app) {
  auto o = std::make_shared<CompressOptions>();
  auto* sub = app.add_subcommand("compress", "Compress a model: apply a per-layer plan through a pipeline of passes");
  sub->footer(
      "Writes DIR (all or nothing): model.pt (TorchScript with the decoded weights) and model.json, plan.json\n"
      "(the plan as applied, every field of every layer), encodings.pt (codes, scales, zero points, masks),\n"
      "report.json and report.md (metrics before/after, honest sizes, SQNR per layer, pass timings).\n"
      "See 'adze passes' for the passes a pipeline can list.\n\n"
      "Examples:\n"
      "  adze compress fmnist-cnn --plan configs/plans/int8.json --pipeline configs/pipelines/ptq.json --data fmnist "
      "--out cnn-int8\n"
      "  adze compress fmnist-cnn --plan configs/plans/2of4-int4.json --pipeline configs/pipelines/ptq.json --data "
      "fmnist --limit 2000 --out cnn-24\n"
      "  adze compress fmnist-cnn --plan configs/plans/2of4-int4-a8.json --pipeline configs/pipelines/qat.json --data "
      "fmnist --out cnn-qat\n\n"
      "Calibration and finetune.* passes learn from --train-split of the --data source (evaluation reads\n"
      "--split); fine-tuning distils from the uncompressed model (loaded a second time). The same --seed\n"
      "gives the same bytes out.");
  sub->add_option("model", o->model, "TorchScript file or reference model name")->required();
  sub->add_option("--plan", o->plan, "plan JSON (docs/plans-and-pipelines.md, Plan)")->required();
  sub->add_option("--pipeline", o->pipeline, "pipeline JSON: {\"passes\": [...]}")->required();
  sub->add_option("--data", o->data, "data SPEC for evaluation (fmnist, fortunes, tensors:FILE, ...)");
  sub->add_option("--split", o->split, "split to evaluate on")->capture_default_str();
  sub->add_option("--limit", o->limit, "evaluate at most N samples (0: all)");
  sub->add_option("--batch-size", o->batch_size, "evaluation batch size");
  sub->add_option("--train-split", o->train_split, "split that calibration and fine-tuning learn from")
      ->capture_default_str();
  sub->add_option("--train-limit", o->train_limit, "train on at most N samples (0: all)");
  sub->add_option("--seed", o->seed, "seed for fine-tuning batches")->capture_default_str();
  sub->add_option("--out", o->out, "output directory (must not exist)")->required();
  sub->add_option("--input-shape", o->input_shape, "sample input shape when no card records it");
  sub->add_option("--input-dtype", o->input_dtype, "float32 or int64");
  sub->add_flag("--json", o->json, "print the report as JSON");
  sub->add_flag("--data-parallel", o->data_parallel,
                "fine-tune data-parallel: each rank trains on its share of every batch and the ranks average their "
                "gradients (ranks from mpirun, or ADZE_RANK and ADZE_WORLD_SIZE; Gloo's store from ADZE_STORE or "
                "ADZE_MASTER); rank 0 writes --out");
  sub->add_option("--data-parallel-backend", o->backend,
                  "how --data-parallel ranks average gradients: gloo (c10d's Gloo over TCP; any launcher) or mpi "
                  "(MPI_Allreduce; ranks started by mpirun, shared memory on one host)")
      ->check(CLI::IsMember({"gloo", "mpi"}))
      ->capture_default_str();
  sub->callback([o] { run_compress(*o); });
}

}  // namespace adze::cli
