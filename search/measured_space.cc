#include "search/measured_space.h"

#include "core/error.h"
#include "data/model_data.h"
#include "model/frontend.h"

namespace adze {

MeasuredSpace measure_space(const SpaceOptions& o, const Target* target, const Contract* contract, bool progress,
                            bool refresh) {
  if (o.limit < 1) throw Error(ErrorKind::kInvalidArgument, "--limit " + std::to_string(o.limit) + ": must be >= 1");
  if (o.probes < 0) throw Error(ErrorKind::kInvalidArgument, "--probes " + std::to_string(o.probes) + ": must be >= 0");
  if (o.eval_batch < 1)
    throw Error(ErrorKind::kInvalidArgument, "--batch " + std::to_string(o.eval_batch) + ": must be >= 1");
  const SpaceSpec spec = space_spec(o.bits, o.nm, o.act_bits, o.decompose);
  MeasuredSpace m;
  m.path = o.model;
  m.input = resolve_input_spec(m.path, o.input_shape, o.input_dtype);
  m.data = load_data_for_model(m.path, m.input, o.data, o.split, o.limit, o.eval_batch);
  m.model = std::make_unique<Model>(load_torchscript(m.path, m.input));
  m.table = build_layer_table(*m.model);
  m.space = build_search_space(m.table, spec, target, contract);
  SensitivityOptions so;
  so.batch = m.input.shape[0];
  so.hessian_probes = o.probes;
  so.seed = o.seed;
  so.progress = progress;
  m.sensitivity =
      cached_sensitivity(*m.model, m.table, m.data, m.space, so,
                         data_identity(m.path, m.input, o.data, o.split, m.data.size()), refresh, &m.cached);
  return m;
}

}  // namespace adze
