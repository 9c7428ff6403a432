// Compression inside your own libtorch training loop: the fmnist-cnn module trains as usual, then a plan
// (2:4 sparsity + INT4 per-channel weights) is attached and the loop goes on with one Compressor::step per
// batch. At the end the Encodings are read out and checked.
//
//   train_with_plan [--plain-steps N] [--compress-steps M] [--test-limit K] [--plan PLAN.json]
//
// Prints test accuracy after plain training, right after the one-shot projection and after STE, then the
// Encodings. Exit code 0 when every compressed weight satisfies its plan, 1 otherwise, 2 for bad arguments.
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "compress/compressor.h"
#include "compress/plan.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/eval.h"
#include "examples/reference/models.h"

namespace {

const char* kDefaultPlan = R"({
  "defaults": {"weight_bits": 4, "nm": "2:4", "granularity": "channel", "scale_method": "mse"},
  "layers": {"features.0": {"weight_bits": 8, "nm": "none"}}
})";

struct Args {
  int64_t plain_steps = 600, compress_steps = 200, test_limit = 0;
  std::string plan;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw adze::Error(adze::ErrorKind::kInvalidArgument, "missing value after " + flag);
    const std::string value = argv[++i];
    if (flag == "--plain-steps")
      a.plain_steps = std::stoll(value);
    else if (flag == "--compress-steps")
      a.compress_steps = std::stoll(value);
    else if (flag == "--test-limit")
      a.test_limit = std::stoll(value);
    else if (flag == "--plan")
      a.plan = value;
    else
      throw adze::Error(adze::ErrorKind::kInvalidArgument, "unknown flag " + flag);
  }
  return a;
}

double accuracy(adze::reference::FmnistCnn& net, const adze::Dataset& test) {
  net->eval();
  const double top1 = adze::evaluate([&](const at::Tensor& x) { return net->forward(x); }, test, {256, false}).top1;
  net->train();
  return top1;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  torch::manual_seed(0);
  at::set_num_threads(2);
  const adze::Dataset train = adze::load_dataset("fmnist", {"train", 0, 0});
  const adze::Dataset test = adze::load_dataset("fmnist", {"test", args.test_limit, 0});
  adze::reference::FmnistCnn net;
  net->train();
  torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(2e-3));
  auto gen = at::detail::createCPUGenerator(0);
  auto loss_on_batch = [&] {
    const at::Tensor idx = torch::randint(train.size(), {128}, gen);
    at::Tensor loss = torch::nn::functional::cross_entropy(net->forward(train.inputs.index_select(0, idx)),
                                                           train.targets.index_select(0, idx));
    loss.backward();
    return loss;
  };

  // 1. Your usual training.
  for (int64_t step = 0; step < args.plain_steps; ++step) {
    optimizer.zero_grad();
    loss_on_batch();
    optimizer.step();
  }
  std::cout << "fp32 after " << args.plain_steps << " steps: test top-1 " << accuracy(net, test) << "\n";

  // 2. Attach a plan; from here each step is one call.
  const adze::Plan plan = args.plan.empty()
                              ? adze::parse_plan(nlohmann::ordered_json::parse(kDefaultPlan), "built-in plan")
                              : adze::load_plan(args.plan);
  adze::Compressor compressor = adze::Compressor::attach(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, {{1, 1, 28, 28}, "float32"}, plan);
  for (const auto& w : compressor.warnings()) std::cout << "warning: " << w << "\n";
  compressor.begin_step();  // between begin_step and end_step the module holds the projected weights
  std::cout << "one-shot projection: test top-1 " << accuracy(net, test) << "\n";
  compressor.end_step();
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(2e-4);
  for (int64_t step = 0; step < args.compress_steps; ++step) compressor.step(loss_on_batch, optimizer);

  // 3. Read the Encodings out: the module now holds exactly their decoded weights.
  const std::map<std::string, adze::Encoding> encodings = compressor.finish();
  std::cout << "after " << args.compress_steps << " STE steps: test top-1 " << accuracy(net, test) << "\n";
  bool ok = !encodings.empty();
  const auto params = net->named_parameters();
  for (const auto& [name, e] : encodings) {
    const at::Tensor& w = *params.find(name + ".weight");
    const bool exact = torch::equal(w, e.decode());
    const bool nm =
        !e.config.nm.enabled() || satisfies_nm(e.decode().permute(e.order).reshape({e.channels(), -1}), e.config.nm);
    std::cout << "  " << name << ": " << e.config.weight_bits << "-bit codes " << e.codes.sizes() << ", N:M "
              << e.config.nm.to_string() << (exact ? ", weight == decode()" : ", WEIGHT DIFFERS")
              << (nm ? "" : ", PATTERN VIOLATED") << "\n";
    ok = ok && exact && nm;
  }
  return ok ? 0 : 1;
} catch (const adze::Error& e) {
  std::cerr << "train_with_plan: " << e.what() << "\n";
  return 2;
}
