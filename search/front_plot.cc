#include "search/front_plot.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/svg_chart.h"

namespace adze {

std::string front_svg(const std::vector<Point>& front, const std::vector<Point>& baselines, const Point& best,
                      double budget, const std::string& cost_axis, const std::string& loss_axis,
                      const std::string& title) {
  double x0 = budget, x1 = budget, y0 = 0, y1 = 1e-12;
  for (const auto* points : {&front, &baselines})
    for (const auto& p : *points) {
      x0 = std::min(x0, p.cost);
      x1 = std::max(x1, p.cost);
      y0 = std::min(y0, p.loss * 1.08);
      y1 = std::max(y1, p.loss);
    }
  const auto [left, right] = padded(x0, x1, 0.05);
  Chart c(left, right, y0, y1 * 1.08, title, cost_axis, loss_axis);
  c.vertical(budget, "budget");
  if (!front.empty()) {
    c.s << "<polyline fill=\"none\" stroke=\"#4a78b5\" stroke-width=\"1.5\" points=\"";
    for (const auto& p : front) c.s << c.X(p.cost) << "," << c.Y(p.loss) << " ";
    c.s << "\"/>\n";
    for (const auto& p : front)
      c.s << "<circle cx=\"" << c.X(p.cost) << "\" cy=\"" << c.Y(p.loss) << "\" r=\"2.5\" fill=\"#4a78b5\"><title>cost "
          << p.cost << ", loss " << p.loss << "</title></circle>\n";
  }
  for (const auto& p : baselines) c.square(p.cost, p.loss, p.label);
  c.ring(best.cost, best.loss, "chosen (" + best.label + ")");
  return c.finish();
}

std::string confirmed_svg(const std::vector<ConfirmedMark>& plans, double budget, double fp32_top1,
                          const std::string& cost_axis, const std::string& top1_axis, const std::string& title) {
  double x0 = budget, x1 = budget, y0 = fp32_top1 * 100, y1 = fp32_top1 * 100;
  for (const auto& p : plans) {
    x0 = std::min(x0, p.cost);
    x1 = std::max(x1, p.cost);
    y0 = std::min(y0, p.top1_min * 100);
    y1 = std::max(y1, p.top1_max * 100);
  }
  const auto [left, right] = padded(x0, x1, 0.08);
  const auto [bottom, top] = padded(y0, y1, 0.12);
  Chart c(left, right, bottom, top, title, cost_axis, top1_axis);
  c.vertical(budget, "budget");
  c.horizontal(fp32_top1 * 100, "uncompressed");
  for (const auto& p : plans) {
    const double x = c.X(p.cost), y = c.Y(p.top1 * 100);
    if (p.top1_max > p.top1_min)  // the range over the plan's runs
      c.s << "<line x1=\"" << x << "\" y1=\"" << c.Y(p.top1_min * 100) << "\" x2=\"" << x << "\" y2=\""
          << c.Y(p.top1_max * 100) << "\" stroke=\"#4a78b5\"/>\n";
    if (p.uniform) {
      c.square(p.cost, p.top1 * 100, p.label);
    } else {
      c.s << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"3.5\" fill=\"#4a78b5\"><title>" << xml_escape(p.label)
          << "</title></circle>\n";
      if (!p.written)
        c.s << "<text x=\"" << x + 6 << "\" y=\"" << y - 6 << "\" fill=\"#2c4f80\">" << xml_escape(p.label)
            << "</text>\n";
    }
    if (p.written) c.ring(p.cost, p.top1 * 100, "written (" + p.label + ")");
  }
  return c.finish();
}

}  // namespace adze
