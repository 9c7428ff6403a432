#include "cli/search_print.h"

#include <iostream>

#include "core/table.h"

namespace adze::cli {
namespace {

// The confirmed plans (plans_of) as a table, with `reference`'s lead over each (leads_of).
void print_confirmations(std::ostream& out, const ConfirmSettings& o, const std::string& pipeline_source,
                         bool selecting, const std::vector<ConfirmedPlan>& plans, const Leads& leads,
                         const std::string& reference, const std::string& chosen) {
  out << "\nconfirmed by compress runs (" << pipeline_source << ", " << o.split << " split"
      << (o.seeds > 1 ? ", " + std::to_string(o.seeds) + " seeds each, means" : "") << "):\n";
  Table c;
  c.add_column("plan");
  if (selecting) c.add_column(o.select_split + " top-1", Table::Align::kRight);
  c.add_column(o.split + " top-1", Table::Align::kRight);
  if (o.seeds > 1) c.add_column("range over seeds", Table::Align::kRight);
  c.add_column("fp32 top-1", Table::Align::kRight);
  c.add_column("compressed", Table::Align::kRight);
  c.add_column("bits/weight", Table::Align::kRight);
  c.add_column(reference + "'s lead, points (95% CI)", Table::Align::kRight);
  for (const auto& p : plans) {
    std::vector<std::string> row = {p.label + (p.label == chosen ? " (selected)" : "")};
    if (selecting) row.push_back(p.select_top1 ? percent(*p.select_top1, 2) : "");
    row.push_back(percent(p.top1, 2));
    if (o.seeds > 1) row.push_back(percent(p.top1_min, 2) + " to " + percent(p.top1_max, 2));
    for (std::string cell : {percent(p.before_top1, 2), human_bytes(static_cast<double>(p.compressed_bytes)),
                             fixed(p.average_weight_bits, 3)})
      row.push_back(cell);
    std::string cell;
    for (const Lead& l : leads.over)
      if (l.against == p.label)
        cell = signed_fixed(l.difference, 2) + " (" + signed_fixed(l.low, 2) + " to " + signed_fixed(l.high, 2) + ")";
    row.push_back(cell);
    c.add_row(row);
  }
  c.print(out);
}

}  // namespace

void print_search_run(const SearchRunOptions& o, const SearchRun& r) {
  const Problem& problem = r.problem;
  const Budget& budget = o.budget;
  std::cout << "model " << r.space.model->source() << " on " << o.target.name << ", " << budget.to_string() << ", "
            << o.algo << " over " << r.space.table.layers.size() << " layers (sensitivity of " << r.space.data.size()
            << " samples" << (r.space.cached ? ", cached" : "") << ")\n\n";
  Table t;
  t.add_column("layer");
  t.add_column("config");
  t.add_column("predicted loss +", Table::Align::kRight);
  t.add_column(to_string(budget.metric), Table::Align::kRight);
  for (std::size_t l = 0; l < problem.layers.size(); ++l) {
    const auto i = static_cast<std::size_t>(r.result.best.choice[l]);
    t.add_row({problem.layers[l], config_label(problem.configs[l][i]), fixed(problem.loss[l][i], 4),
               human_cost(budget.metric, problem.cost[l][i])});
  }
  t.add_row({});
  t.add_row(
      {"total", "", fixed(problem.total_loss(r.result.best.choice), 4), human_cost(budget.metric, r.result.best.cost)});
  t.print(std::cout);
  const Metrics& base = r.space.sensitivity.base;
  std::cout << "\nmeasured with every layer compressed at once: loss +"
            << fixed(r.best_metrics.cross_entropy - base.cross_entropy, 4) << ", top-1 "
            << percent(r.best_metrics.top1, 2) << " (fp32 " << percent(base.top1, 2) << ") on " << r.space.data.size()
            << " samples of " << o.space.split << "\n\nuniform baselines:\n";
  Table b;
  b.add_column("plan");
  b.add_column(std::string(r.measured ? "measured" : "predicted") + " loss +", Table::Align::kRight);
  b.add_column(to_string(budget.metric), Table::Align::kRight);
  b.add_column("within budget");
  for (const auto& pt : r.baselines)
    b.add_row(
        {pt.label, fixed(pt.loss, 4), human_cost(budget.metric, pt.cost), pt.cost <= budget.value ? "yes" : "no"});
  b.print(std::cout);
  if (!r.confirmed_plans.empty())
    print_confirmations(std::cout, o.confirmation, o.pipeline.source, r.selecting, r.confirmed_plans, r.leads,
                        r.written(), r.chosen ? r.chosen->label : "");
  std::cout << "\nwrote " << o.out << "/plan.json, front.json, front.csv, front.svg, "
            << (r.confirmed_plans.empty() ? "" : "confirmed.svg, ") << "search.log (" << r.result.front.size()
            << " points on the front, search " << fixed(r.search_seconds, 1) << " s"
            << (r.out_of_time ? ", stopped by --time-budget" : "") << ")\n";
}

}  // namespace adze::cli
