// adze search MODEL --target T --budget size=200KB --algo dp|greedy|evo|rl --data SPEC --out DIR: a per-layer
// plan (bits x N:M) with the least loss within a hardware budget, anytime and resumable, confirmed by real
// compress runs. The search itself is search/search_run.h; this file reads the flags and prints the tables.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/search_print.h"
#include "cli/space_options.h"
#include "core/error.h"
#include "core/registry.h"
#include "search/search_run.h"
#include "search/searcher.h"

namespace adze::cli {
namespace {

struct SearchCliOptions {
  SearchRunOptions run;
  std::string target, budget, time_budget, pipeline;
  std::vector<std::string> algo_options;
  int64_t finetune_steps = 0;
  bool json = false;
};

void run(SearchCliOptions& c) {
  SearchRunOptions& o = c.run;
  o.budget = parse_budget(c.budget);
  o.target = load_target(c.target);
  o.algo_options = parse_option_assignments(c.algo_options, "--algo-option");
  o.time_budget_s = c.time_budget.empty() ? 0 : parse_duration(c.time_budget, "--time-budget");
  if (c.finetune_steps < 0)
    throw Error(ErrorKind::kInvalidArgument, "--finetune-steps " + std::to_string(c.finetune_steps) + ": must be >= 0");
  o.pipeline =
      c.pipeline.empty() ? confirmation_pipeline(o.space.act_bits, c.finetune_steps) : load_pipeline(c.pipeline);
  o.space.model = resolve_model_path(o.space.model);
  o.progress = show_progress(c.json);
  const SearchRun r = run_search(o);
  if (c.json)
    std::cout << r.summary.dump(2) << "\n";
  else
    print_search_run(o, r);
  if (!r.result.satisfiable) {
    std::cerr << "adze: the budget " << o.budget.to_string() << " cannot be met: the closest plan ("
              << human_cost(o.budget.metric, r.result.best.cost) << ") is written to " << o.out << "\n";
    throw Unsatisfiable();
  }
}

}  // namespace

void setup_search(CLI::App& app) {
  auto c = std::make_shared<SearchCliOptions>();
  SearchRunOptions* o = &c->run;
  auto* sub = app.add_subcommand("search", "Find a per-layer plan with the least loss within a hardware budget");
  sub->footer(
      "Builds the search space (weight bits x N:M x --decompose per layer, each legal for the layer, run by --target\n"
      "and, with --exporter, writable by that format), measures each option's loss increase on a calibration subset\n"
      "(adze sensitivity; cached), prices each option in the budget's metric (size: encoded bytes; bits: encoded\n"
      "bits per weight, metadata included; latency and energy: --cost-model on --target at --batch),\n"
      "and searches (--algo):\n" +
      registry_listing(searchers(), "--algo-option ") +
      "dp and greedy predict a plan's loss as the sum of its layers' increases; evo and rl measure it, which\n"
      "sees how layers' errors compound. Options of an algorithm: --algo-option NAME=VALUE (adze search --algo\n"
      "evo --algo-option generations=50); docs/hardware-and-search.md, Search.\n\n"
      "Anytime: DIR/plan.json is the best plan so far from the first round on; --time-budget ends the search\n"
      "with it. Every measured plan is kept in DIR/search-state.json: --resume DIR after a kill replays the\n"
      "search from there (the same seed gives the same path) and goes on; a DIR searched with another model,\n"
      "data, space, target, budget, algorithm or seed is refused.\n\n"
      "Confirmation: the best plan and the best uniform plan within the budget (and each --confirm-baseline)\n"
      "are compressed for real (fold BatchNorm, N:M, quantize, --finetune-steps of STE fine-tuning distilled from\n"
      "the fp32 model, or --pipeline) and evaluated on --confirm-split. With --confirm N > 1, N - 1 runners-up\n"
      "join them (the front's points within the budget and the best plan's one-layer neighbours, by loss); these\n"
      "are also evaluated on --select-split (val: held out of fine-tuning), and the best there goes to plan.json.\n"
      "A loss measured before fine-tuning cannot see what fine-tuning recovers; this choice can, without looking\n"
      "at the split that reports. The written plan's top-1 lead over each other confirmed plan is reported with\n"
      "a paired 95% interval: one that holds 0 is a difference the split cannot tell from chance.\n"
      "--confirm-seeds K runs each confirmation K times, fine-tuning's data order drawn from seeds --seed to\n"
      "--seed + K - 1: accuracies are means over the runs, and the lead is over samples each averaged over the\n"
      "runs, so one fine-tune's luck weighs less. --confirm-plan FILE confirms another plan the same way (say,\n"
      "the plan.json of a search without decomposition), so the lead compares two searches on the same samples\n"
      "and seeds.\n\n"
      "Writes DIR/plan.json (for adze compress --plan), front.json and front.csv (the Pareto front, the uniform\n"
      "baselines, the confirmations), front.svg (loss against cost), confirmed.svg (the confirmed plans' top-1\n"
      "against cost, baselines marked), search.log. Exit code 3 when no plan meets the budget: the closest plan is\n"
      "still written.\n\n"
      "Examples:\n"
      "  adze search fmnist-cnn --target cortex-m7 --budget size=150KB --data fmnist --out cnn-150k\n"
      "  adze search fmnist-cnn --target host --budget bits=3 --algo evo --finetune-steps 400 --data fmnist --out b3\n"
      "  adze search fmnist-cnn --target host --budget bits=4 --confirm 3 --finetune-steps 400 --confirm-baseline w4 "
      "\\\n"
      "      --data fmnist --out b4\n"
      "  adze search fortune-gpt --target a100 --budget latency=80us --algo greedy --data fortunes --out gpt-a100");
  add_space_options(sub, o->space);
  sub->add_option("--target", c->target, "hardware target (adze target list) or a target JSON file")->required();
  sub->add_option("--budget", c->budget, "latency=2ms, size=200KB, energy=1mJ or bits=4")->required();
  sub->add_option("--algo", o->algo, "dp, greedy, evo or rl")->capture_default_str();
  sub->add_option("--algo-option", c->algo_options, "NAME=VALUE for the algorithm (repeatable)");
  sub->add_option("--out", o->out, "output directory (must not exist, unless --resume)")->required();
  sub->add_flag("--resume", o->resume, "go on with the search in --out, reusing every plan measured there");
  sub->add_option("--time-budget", c->time_budget,
                  "end the search this long after the command started (90s, 10min, 2h)");
  sub->add_option("--cost-model", o->cost_model, "prices latency and energy budgets: roofline, or measured (host only)")
      ->capture_default_str();
  sub->add_option("--batch", o->batch, "samples per inference, for latency and energy")->capture_default_str();
  sub->add_option("--exporter", o->exporter, "keep only what this format can write (adze exporters)");
  sub->add_option(
         "--confirm", o->confirm,
         "plans confirmed by a compress run: the best and its runners-up (0: none; > 1: choose on --select-split)")
      ->capture_default_str();
  sub->add_option(
         "--confirm-seeds", o->confirmation.seeds,
         "runs of each confirmed plan, with seeds --seed, --seed + 1, ...: means, and leads averaged per sample")
      ->capture_default_str();
  sub->add_option("--finetune-steps", c->finetune_steps, "STE fine-tuning steps of a confirmation run")
      ->capture_default_str();
  sub->add_option("--pipeline", c->pipeline, "pipeline JSON of the confirmation runs (instead of --finetune-steps)");
  sub->add_option(
      "--confirm-baseline", o->confirm_baselines,
      "uniform plans also confirmed, even over the budget (w4, \"w3 2:4\"; the best uniform plan within the "
      "budget always is)");
  sub->add_option("--confirm-plan", o->confirm_plans,
                  "a plan file also confirmed, even over the budget (another search's plan.json: the paired lead "
                  "compares two searches; repeatable)");
  sub->add_option("--confirm-split", o->confirmation.split, "split the confirmation runs are evaluated on")
      ->capture_default_str();
  o->confirmation.select_split = "val";
  sub->add_option("--select-split", o->confirmation.select_split,
                  "split that chooses among the confirmed plans (--confirm > 1) after the pipeline")
      ->capture_default_str();
  sub->add_option("--confirm-limit", o->confirmation.limit, "evaluate confirmations on at most N samples (0: all)")
      ->capture_default_str();
  sub->add_option("--train-limit", o->confirmation.train_limit, "fine-tune and calibrate on at most N samples (0: all)")
      ->capture_default_str();
  sub->add_flag("--json", c->json, "print JSON");
  sub->callback([c] { run(*c); });
}

}  // namespace adze::cli
