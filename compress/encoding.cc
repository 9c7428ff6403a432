#include "compress/encoding.h"

#include <torch/torch.h>

#include <cmath>
#include <numeric>

#include "compress/decompose.h"
#include "core/error.h"
#include "model/layer_table.h"
#include "sparsity/permutation.h"

namespace adze {
namespace {

// One plain pass (vectorised), instead of materialising isfinite() as a tensor.
bool all_finite(const at::Tensor& weight) {
  const at::Tensor w = weight.to(torch::kFloat).contiguous();
  const float* x = w.data_ptr<float>();
  float bad = 0.0f;
#pragma omp simd reduction(+ : bad)
  for (int64_t i = 0; i < w.numel(); ++i) bad += x[i] * 0.0f;  // NaN or Inf anywhere makes the sum NaN
  return bad == 0.0f;
}

// x where keep, +0 elsewhere, in one pass (a product x · 0 would give −0 for negative x, a sign no packed format
// stores).
at::Tensor apply_mask(const at::Tensor& canonical, const at::Tensor& keep) {
  const at::Tensor x = canonical.contiguous();
  at::Tensor out = torch::empty_like(x);
  const float* __restrict src = x.data_ptr<float>();
  const uint8_t* __restrict k = reinterpret_cast<const uint8_t*>(keep.contiguous().data_ptr<bool>());
  float* __restrict dst = out.data_ptr<float>();
  for (int64_t i = 0, n = x.numel(); i < n; ++i) dst[i] = k[i] ? src[i] : 0.0f;
  return out;
}

// Rows of the quantization grid: [1, C·K], [C, K] or [C·K/g, g].
at::Tensor grid_rows(const at::Tensor& canonical, const LayerConfig& c) {
  switch (c.granularity) {
    case Granularity::kPerTensor:
      return canonical.reshape({1, -1});
    case Granularity::kPerChannel:
      return canonical;
    case Granularity::kPerGroup:
      return canonical.reshape({-1, c.group_size});
  }
  return canonical;
}

// Keeps exactly round((1 − ratio)·n) of the largest magnitudes among `keep` (lower flat index first on ties).
at::Tensor unstructured_mask(const at::Tensor& canonical, const at::Tensor& keep, double ratio) {
  at::Tensor magnitude = canonical.abs().reshape({-1});
  if (keep.defined()) magnitude = magnitude.masked_fill(keep.reshape({-1}).logical_not(), -1.0);
  const int64_t candidates = keep.defined() ? keep.sum().item<int64_t>() : canonical.numel();
  const auto kept = static_cast<int64_t>(std::llround((1.0 - ratio) * static_cast<double>(candidates)));
  at::Tensor order = std::get<1>(torch::sort(magnitude, /*stable=*/true, /*dim=*/0, /*descending=*/true));
  at::Tensor mask = torch::zeros({canonical.numel()}, torch::kBool);
  mask.index_fill_(0, order.slice(0, 0, kept), true);
  return mask.view(canonical.sizes());
}

// The length of the runs N:M groups and channel permutations act on: a convolution's input channels (per
// kernel position), otherwise the whole reduction dimension.
int64_t run_length(const Layer& layer) {
  return layer.kind == LayerKind::kConv1d || layer.kind == LayerKind::kConv2d ? layer.weight_shape.at(1)
                                                                              : layer.reduction_size;
}

// Reorders the channels of each run of a [C, K] matrix (K = positions · run).
at::Tensor permute_channels(const at::Tensor& x, const at::Tensor& order) {
  const int64_t run = order.numel();
  return x.reshape({x.size(0), -1, run}).index_select(2, order).reshape({x.size(0), -1});
}

// The mask projection keeps, rows [begin, end) of it, of the encoded [C, K] matrix `canonical`: the `fixed`
// one, or N:M (row by row) and then unstructured sparsity (over the whole matrix); undefined when dense.
at::Tensor projection_mask(const at::Tensor& canonical, const LayerConfig& c, const at::Tensor& fixed, int64_t begin,
                           int64_t end) {
  const bool all = begin == 0 && end == canonical.size(0);
  if (fixed.defined()) {
    if (fixed.sizes() != canonical.sizes())
      throw Error(ErrorKind::kInternal,
                  "mask " + c10::str(fixed.sizes()) + " does not fit weight " + c10::str(canonical.sizes()));
    return fixed.slice(0, begin, end).to(torch::kBool).contiguous();
  }
  if (c.sparsity <= 0) return c.nm.enabled() ? nm_mask_rows(canonical.slice(0, begin, end), c.nm) : at::Tensor();
  at::Tensor mask = c.nm.enabled() ? nm_mask_rows(canonical, c.nm) : at::Tensor();
  at::Tensor unstructured = unstructured_mask(canonical, mask, c.sparsity);
  mask = mask.defined() ? mask.logical_and(unstructured) : unstructured;
  return all ? mask : mask.slice(0, begin, end).contiguous();
}

// The projection proper; project() checks the config and the weight first.
Encoding project_checked(const at::Tensor& weight, const Layer& layer, const LayerConfig& c,
                         const SparsityStructure& structure, const RowQuantParams& scales) {
  Encoding e;
  e.shape = Shape(weight.sizes().begin(), weight.sizes().end());
  e.config = c;
  at::Tensor canonical = to_canonical(weight.to(torch::kFloat), layer.reduction_dim, &e.order);
  if (structure.permutation.defined()) {
    e.permutation = structure.permutation;
  } else if (c.permute && c.nm.enabled()) {
    const int64_t run = run_length(layer);
    e.permutation = search_channel_permutation(canonical.abs().reshape({-1, run}), c.nm).order;
  }
  if (e.permutation.defined()) canonical = permute_channels(canonical, e.permutation);
  e.mask = projection_mask(canonical, c, structure.mask, 0, canonical.size(0));
  if (!c.quantized()) {
    e.values = e.mask.defined() ? apply_mask(canonical, e.mask) : canonical.clone();
    return e;
  }
  at::Tensor rows = grid_rows(canonical, c);
  at::Tensor keep = e.mask.defined() ? grid_rows(e.mask, c) : at::Tensor();
  const GridRows grid = traits_of(c.quantizer).project(rows, c, keep, GridRows{{}, scales.scale, scales.zero_point});
  e.codes = grid.codes;  // pruned weights get the code of zero
  e.scale = grid.scale;
  e.zero_point = grid.zero_point;
  return e;
}

}  // namespace

const char* to_string(Granularity g) {
  switch (g) {
    case Granularity::kPerTensor:
      return "tensor";
    case Granularity::kPerChannel:
      return "channel";
    case Granularity::kPerGroup:
      return "group";
  }
  return "channel";
}

const char* to_string(Quantizer q) { return traits_of(q).name; }

bool LayerConfig::operator==(const LayerConfig& o) const {
  return weight_bits == o.weight_bits && quantizer == o.quantizer && symmetric == o.symmetric &&
         granularity == o.granularity && group_size == o.group_size && pow2_scale == o.pow2_scale &&
         scale_method == o.scale_method && percentile == o.percentile && act_bits == o.act_bits && nm == o.nm &&
         permute == o.permute && sparsity == o.sparsity && decompose == o.decompose && rank == o.rank &&
         rank_ratio == o.rank_ratio && blocks == o.blocks && basis == o.basis;
}

int64_t Encoding::channels() const { return shape.empty() ? 0 : shape[static_cast<std::size_t>(order[0])]; }
int64_t Encoding::reduction() const { return shape_numel(shape) / std::max<int64_t>(1, channels()); }

at::Tensor to_canonical(const at::Tensor& weight, int reduction_dim, std::vector<int64_t>* order) {
  const int64_t dims = weight.dim();
  std::vector<int64_t> perm;
  if (dims == 2) {
    perm = reduction_dim == 1 ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{1, 0};
  } else {
    // [Cout, Cin, k...] -> [Cout, k..., Cin]
    perm.push_back(0);
    for (int64_t d = 2; d < dims; ++d) perm.push_back(d);
    perm.push_back(1);
  }
  if (order) *order = perm;
  at::Tensor permuted = weight.permute(perm).contiguous();
  return permuted.reshape({permuted.size(0), -1});
}

at::Tensor Encoding::decode() const {
  if (config.decomposed()) return from_canonical(compose_factors(*this));
  at::Tensor canonical;
  if (config.quantized()) {
    at::Tensor rows = traits_of(config.quantizer).decode(GridRows{codes, scale, zero_point}, config);
    canonical = rows.reshape({channels(), reduction()});
  } else {
    canonical = values;
  }
  if (mask.defined()) canonical = canonical * mask.to(torch::kFloat);
  return from_canonical(canonical);
}

at::Tensor Encoding::to_encoded_layout(const at::Tensor& weight) const {
  at::Tensor canonical = weight.permute(order).contiguous().reshape({channels(), reduction()});
  return permutation.defined() ? permute_channels(canonical, permutation) : canonical;
}

at::Tensor Encoding::from_canonical(const at::Tensor& encoded) const {
  at::Tensor canonical = encoded;
  if (permutation.defined()) canonical = permute_channels(encoded, torch::argsort(permutation));
  // Undo the dimension order: canonical is [C, rest of permuted dims...].
  std::vector<int64_t> permuted_shape;
  for (auto d : order) permuted_shape.push_back(shape[static_cast<std::size_t>(d)]);
  std::vector<int64_t> inverse(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) inverse[static_cast<std::size_t>(order[i])] = static_cast<int64_t>(i);
  return canonical.reshape(permuted_shape).permute(inverse).contiguous();
}

namespace {

// rows.ge(lo).logical_and(rows.le(hi)) for [R, K] float rows and one bound per row, in one pass.
at::Tensor inside_rows(const at::Tensor& rows_in, const at::Tensor& lo_in, const at::Tensor& hi_in) {
  const int64_t count = rows_in.size(0), width = rows_in.size(1);
  if (rows_in.scalar_type() != torch::kFloat || lo_in.scalar_type() != torch::kFloat ||
      hi_in.scalar_type() != torch::kFloat || lo_in.numel() != count || hi_in.numel() != count)
    return rows_in.ge(lo_in).logical_and(rows_in.le(hi_in));
  const at::Tensor rows = rows_in.contiguous(), lo = lo_in.contiguous(), hi = hi_in.contiguous();
  at::Tensor inside = torch::empty({count, width}, torch::kBool);
  const float *x = rows.data_ptr<float>(), *l = lo.data_ptr<float>(), *h = hi.data_ptr<float>();
  bool* out = inside.data_ptr<bool>();
  at::parallel_for(0, count, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float low = l[r], high = h[r];
      const float* row = x + r * width;
      bool* inside_row = out + r * width;
      for (int64_t k = 0; k < width; ++k)
        inside_row[k] = (row[k] >= low) & (row[k] <= high);  // no branch, so the loop vectorises
    }
  });
  return inside;
}

}  // namespace

at::Tensor Encoding::representable(const at::Tensor& weight) const {
  torch::NoGradGuard no_grad;
  // A decomposed weight has no per-weight range: its factors' products reach every value.
  if (!config.quantized() || config.decomposed()) return torch::ones(weight.sizes(), torch::kBool);
  // Rows of the quantization grid, as project() laid them out.
  at::Tensor rows = to_encoded_layout(weight.detach().to(torch::kFloat)).reshape({scale.size(0), -1});
  const auto [lo, hi] = traits_of(config.quantizer).range(GridRows{codes, scale, zero_point}, config);
  return from_canonical(inside_rows(rows, lo, hi).reshape({channels(), reduction()}));
}

int channel_dim(const Layer& layer) { return layer.weight_shape.size() == 2 && layer.reduction_dim == 0 ? 1 : 0; }

RowQuantParams choose_channel_scales(const at::Tensor& weight, const Layer& layer, const LayerConfig& c,
                                     const SparsityStructure& keep, int64_t begin, int64_t end) {
  if (!c.quantized() || !traits_of(c.quantizer).affine || c.decomposed() || c.granularity == Granularity::kPerTensor)
    throw Error(ErrorKind::kInternal, "layer '" + layer.name + "': its scales are not chosen per channel or group");
  if (c.permute && !keep.permutation.defined())
    throw Error(ErrorKind::kInternal, "layer '" + layer.name + "': the channel permutation is not chosen yet");
  torch::NoGradGuard no_grad;
  // The channels are the canonical matrix's rows: x @ W's columns, else the first dimension. Only theirs are
  // laid out, unless unstructured sparsity ranks every weight of the layer.
  const int dim = channel_dim(layer);
  if (begin < 0 || end > weight.size(dim) || begin > end)
    throw Error(ErrorKind::kInternal, "layer '" + layer.name + "': channels [" + std::to_string(begin) + ", " +
                                          std::to_string(end) + ") are not among its " +
                                          std::to_string(weight.size(dim)));
  const bool whole = c.sparsity > 0 && !keep.mask.defined();
  const at::Tensor part = whole ? weight : weight.slice(dim, begin, end);
  std::vector<int64_t> order;
  at::Tensor canonical = to_canonical(part.to(torch::kFloat), layer.reduction_dim, &order);
  if (keep.permutation.defined()) canonical = permute_channels(canonical, keep.permutation);
  const int64_t first = whole ? begin : 0, last = whole ? end : end - begin;
  const at::Tensor fixed = keep.mask.defined() ? keep.mask.slice(0, begin, end) : at::Tensor();
  const at::Tensor mask = projection_mask(canonical, c, fixed, first, last);
  const at::Tensor rows = grid_rows(canonical.slice(0, first, last), c);
  try {
    const GridRows grid =
        traits_of(c.quantizer).project(rows, c, mask.defined() ? grid_rows(mask, c) : at::Tensor(), GridRows{});
    return {grid.scale, grid.zero_point};
  } catch (const Error& err) {
    throw Error(err.kind(), "failed to project layer '" + layer.name + "': " + err.what());
  }
}

std::string check_config(const Layer& layer, const LayerConfig& c) {
  const int b = c.weight_bits;
  if (!((b >= 2 && b <= 8) || b == 16 || b == 32))
    return "weight_bits " + std::to_string(b) + ": expected 2..8, 16 or 32";
  if (c.act_bits != 0 && c.act_bits != 8 && c.act_bits != 16)
    return "act_bits " + std::to_string(c.act_bits) + ": expected 8, 16 or none";
  if (!(c.sparsity >= 0.0 && c.sparsity < 1.0)) return "sparsity " + std::to_string(c.sparsity) + ": expected [0, 1)";
  if (c.scale_method == ScaleMethod::kPercentile && !(c.percentile > 50.0 && c.percentile <= 100.0))
    return "percentile " + std::to_string(c.percentile) + ": expected (50, 100]";
  // N:M and groups run along the reduction dimension as laid out canonically: for a convolution along the
  // input channels of one kernel position, so they must divide Cin/groups.
  const int64_t run = run_length(layer);
  if (c.nm.enabled() && run % c.nm.m != 0)
    return "nm " + c.nm.to_string() + ": reduction dimension " + std::to_string(run) +
           " is not a multiple of M=" + std::to_string(c.nm.m);
  if (c.quantized() && c.granularity == Granularity::kPerGroup) {
    if (c.group_size < 1) return "group_size " + std::to_string(c.group_size) + ": must be positive";
    if (run % c.group_size != 0)
      return "group_size " + std::to_string(c.group_size) + ": reduction dimension " + std::to_string(run) +
             " is not a multiple of it";
  }
  if (c.permute && !c.nm.enabled()) return "permute: needs an N:M pattern (it chooses which channels share a group)";
  if (c.quantized() && !traits_of(c.quantizer).per_group && c.granularity == Granularity::kPerGroup)
    return std::string("quantizer ") + traits_of(c.quantizer).name +
           ": per-group scales are not supported (use channel or tensor)";
  return check_decomposition(layer, c);
}

Encoding project(const at::Tensor& weight, const Layer& layer, const LayerConfig& c, const SparsityStructure& keep,
                 const RowQuantParams& scales) {
  if (auto why = check_config(layer, c); !why.empty())
    throw Error(ErrorKind::kInvalidConfig, "failed to project layer '" + layer.name + "': " + why);
  torch::NoGradGuard no_grad;
  // Uniform quantization finds NaN/Inf in its range pass (choose_row_params) when it chooses the scales; every
  // other path checks here.
  const bool checked_by_quantizer =
      c.quantized() && traits_of(c.quantizer).affine && !scales.scale.defined() && !c.decomposed();
  if (!checked_by_quantizer && !all_finite(weight))
    throw Error(ErrorKind::kInvalidArgument,
                "failed to project layer '" + layer.name + "': the weight contains NaN or Inf");
  try {
    if (scales.scale.defined() && !(c.quantized() && traits_of(c.quantizer).affine))
      throw Error(ErrorKind::kInternal, "given scales need an affine quantizer");
    if (c.decomposed()) {
      if (scales.scale.defined() || keep.mask.defined() || keep.permutation.defined())
        throw Error(ErrorKind::kInternal, "a decomposed layer's factors choose their own masks and scales");
      return project_decomposed(weight, layer, c);
    }
    return project_checked(weight, layer, c, keep, scales);
  } catch (const Error& err) {
    throw Error(err.kind(), "failed to project layer '" + layer.name + "': " + err.what());
  }
}

}  // namespace adze
