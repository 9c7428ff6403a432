#include "quantize/uniform.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quantize/squared_error.h"

namespace adze {
namespace {

constexpr int64_t kGrain = 16;  // rows per parallel task

// Round half to even, exactly as std::nearbyint in the default rounding mode, for |x| <= 2^22: adding
// 1.5·2^23 moves x into [2^23, 2^24), where floats are spaced 1 apart. Callers clamp x into range first.
// (Without -ffast-math the compiler may not fold (x + m) − m, so this stays exact and vectorises.)
inline float round_half_even(float x) {
  constexpr float kMagic = 12582912.0f;
  return (x + kMagic) - kMagic;
}

struct Params {
  float scale;
  int32_t zero_point;
};

// Scale and zero point for the clipping range [lo, hi] (lo <= 0 <= hi), in float32.
Params params_for(float lo, float hi, const UniformSpec& spec) {
  float scale = spec.symmetric ? std::max(-lo, hi) / static_cast<float>(spec.qmax())
                               : (hi - lo) / static_cast<float>(spec.qmax() - spec.qmin());
  if (!(scale > 0.0f)) scale = 1.0f;
  if (spec.pow2_scale) scale = std::exp2(std::ceil(std::log2(scale)));
  int32_t zp = 0;
  if (!spec.symmetric) {
    const float z = std::nearbyint(static_cast<float>(spec.qmin()) - lo / scale);
    zp = static_cast<int32_t>(std::min<float>(std::max<float>(z, spec.qmin()), spec.qmax()));
  }
  return {scale, zp};
}

// The quantization the squared-error kernels evaluate for one candidate scale and zero point.
RowQuantization grid_of(Params p, const UniformSpec& spec) {
  const float zp = static_cast<float>(p.zero_point);
  return {p.scale, 1.0f / p.scale, static_cast<float>(spec.qmin()) - zp, static_cast<float>(spec.qmax()) - zp};
}

struct Rows {
  at::Tensor data;  // float32 contiguous
  at::Tensor keep;  // bool contiguous or undefined
  int64_t count, width;
  const float* row(int64_t r) const { return data.data_ptr<float>() + r * width; }
  // The mask read as bytes: GCC vectorises uint8 loads but has no vector type for bool.
  const uint8_t* keep_row(int64_t r) const {
    return keep.defined() ? reinterpret_cast<const uint8_t*>(keep.data_ptr<bool>()) + r * width : nullptr;
  }
};

Rows rows_of(const at::Tensor& rows, const at::Tensor& keep) {
  Rows r{rows.to(torch::kFloat).contiguous(), keep.defined() ? keep.to(torch::kBool).contiguous() : at::Tensor(),
         rows.size(0), rows.size(1)};
  return r;
}

// Min and max of x[k]·keep[k] over one row, widened to contain 0 (a pruned weight counts as 0). Returns
// false when the row holds a NaN or Inf (x·0 is NaN exactly then), so that no separate pass checks. The
// reductions are order-independent, which `omp simd` lets the compiler exploit (-fopenmp-simd, no runtime).
template <bool kMasked>
bool range_of_row(const float* __restrict x, const uint8_t* __restrict keep, int64_t n, float& lo, float& hi) {
  float l = 0.0f, h = 0.0f, bad = 0.0f;
#pragma omp simd reduction(min : l) reduction(max : h) reduction(+ : bad)
  for (int64_t k = 0; k < n; ++k) {
    const float v = kMasked ? x[k] * static_cast<float>(keep[k]) : x[k];
    l = std::min(l, v);
    h = std::max(h, v);
    bad += x[k] * 0.0f;
  }
  lo = l;
  hi = h;
  return bad == 0.0f;
}

// Per-row [lo, hi] of the kept elements, widened to contain 0. Throws Error(kInvalidArgument) for NaN/Inf.
void row_ranges(const Rows& rows, std::vector<float>& lo, std::vector<float>& hi) {
  lo.assign(static_cast<std::size_t>(rows.count), 0.0f);
  hi.assign(static_cast<std::size_t>(rows.count), 0.0f);
  std::vector<char> finite(static_cast<std::size_t>(rows.count), 1);
  at::parallel_for(0, rows.count, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const auto i = static_cast<std::size_t>(r);
      finite[i] = rows.keep.defined() ? range_of_row<true>(rows.row(r), rows.keep_row(r), rows.width, lo[i], hi[i])
                                      : range_of_row<false>(rows.row(r), nullptr, rows.width, lo[i], hi[i]);
    }
  });
  if (std::find(finite.begin(), finite.end(), 0) != finite.end())
    throw Error(ErrorKind::kInvalidArgument, "the weight contains NaN or Inf");
}

// Codes of one row; where keep is false, the zero point. Branch-free and restrict-qualified (the int8
// output could otherwise alias the inputs), so that it vectorises.
// Two exact shortcuts: clamping x·(1/s) to the integer bounds [qmin − z, qmax − z] before rounding equals
// clamping after (rounding is monotonic and integers are its fixed points); and a pruned weight enters as 0,
// whose code is z.
template <typename Code, bool kMasked>
void codes_of_row(const float* __restrict x, const uint8_t* __restrict keep, Code* __restrict out, int64_t n, float inv,
                  float zp, float qmin, float qmax) {
  const float lo = qmin - zp, hi = qmax - zp;
  for (int64_t i = 0; i < n; ++i) {
    const float v = kMasked ? x[i] * static_cast<float>(keep[i]) : x[i];
    const float scaled = std::min(std::max(v * inv, lo), hi);
    out[i] = static_cast<Code>(round_half_even(scaled) + zp);
  }
}

RowQuantParams to_tensors(const std::vector<Params>& params) {
  RowQuantParams out;
  const auto n = static_cast<int64_t>(params.size());
  out.scale = torch::empty({n}, torch::kFloat);
  out.zero_point = torch::empty({n}, torch::kInt);
  for (int64_t i = 0; i < n; ++i) {
    out.scale.data_ptr<float>()[i] = params[static_cast<std::size_t>(i)].scale;
    out.zero_point.data_ptr<int32_t>()[i] = params[static_cast<std::size_t>(i)].zero_point;
  }
  return out;
}

}  // namespace

const char* to_string(ScaleMethod method) {
  switch (method) {
    case ScaleMethod::kMinMax:
      return "minmax";
    case ScaleMethod::kPercentile:
      return "percentile";
    case ScaleMethod::kMse:
      return "mse";
  }
  return "minmax";
}

ScaleMethod parse_scale_method(const std::string& text, const std::string& where) {
  if (text == "minmax") return ScaleMethod::kMinMax;
  if (text == "percentile") return ScaleMethod::kPercentile;
  if (text == "mse") return ScaleMethod::kMse;
  throw Error(ErrorKind::kInvalidConfig,
              "failed to parse " + where + " '" + text + "': expected minmax, percentile or mse");
}

RowQuantParams choose_row_params(const at::Tensor& rows_in, const UniformSpec& spec, const at::Tensor& keep) {
  TORCH_INTERNAL_ASSERT(rows_in.dim() == 2 && spec.bits >= 2 && spec.bits <= 8);
  const Rows rows = rows_of(rows_in, keep);
  std::vector<float> lo, hi;
  if (spec.method == ScaleMethod::kPercentile) {
    if (!torch::isfinite(rows.data).all().item<bool>())
      throw Error(ErrorKind::kInvalidArgument, "the weight contains NaN or Inf");
    const double q = spec.percentile / 100.0;
    at::Tensor w = rows.keep.defined() ? rows.data.masked_fill(rows.keep.logical_not(), 0.0) : rows.data;
    at::Tensor l, h;
    if (spec.symmetric) {
      h = torch::quantile(w.abs(), q, 1).contiguous();
      l = -h;
    } else {
      l = torch::quantile(w, 1.0 - q, 1).clamp_max(0.0).contiguous();
      h = torch::quantile(w, q, 1).clamp_min(0.0).contiguous();
    }
    lo.assign(l.data_ptr<float>(), l.data_ptr<float>() + rows.count);
    hi.assign(h.data_ptr<float>(), h.data_ptr<float>() + rows.count);
  } else {
    row_ranges(rows, lo, hi);
  }
  std::vector<Params> params(static_cast<std::size_t>(rows.count));
  at::parallel_for(0, rows.count, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const auto i = static_cast<std::size_t>(r);
      params[i] = params_for(lo[i], hi[i], spec);
      if (spec.method != ScaleMethod::kMse) continue;
      // MSE: clipping ratios 1.00, 0.98, ..., 0.30 of the range; keep the first with the least squared error.
      Params candidates[kMseCandidates];
      RowQuantization grids[kMseCandidates];
      double errors[kMseCandidates];
      for (int step = 0; step < kMseCandidates; ++step) {
        const float ratio = 1.0f - 0.02f * static_cast<float>(step);
        candidates[step] = step == 0 ? params[i] : params_for(lo[i] * ratio, hi[i] * ratio, spec);
        grids[step] = grid_of(candidates[step], spec);
      }
      row_squared_errors(rows.row(r), rows.keep_row(r), rows.width, grids, kMseCandidates, errors);
      double best = errors[0];
      for (int step = 1; step < kMseCandidates; ++step)
        if (errors[step] < best) {
          best = errors[step];
          params[i] = candidates[step];
        }
    }
  });
  return to_tensors(params);
}

at::Tensor quantize_rows(const at::Tensor& rows_in, const RowQuantParams& params, const UniformSpec& spec,
                         const at::Tensor& keep) {
  const Rows rows = rows_of(rows_in, keep);
  const bool wide = spec.qmax() > 127;
  at::Tensor codes = torch::empty({rows.count, rows.width}, wide ? torch::kShort : torch::kChar);
  const at::Tensor scale = params.scale.to(torch::kFloat).contiguous();
  const at::Tensor zero_point = params.zero_point.to(torch::kInt).contiguous();
  const float qmin = static_cast<float>(spec.qmin()), qmax = static_cast<float>(spec.qmax());
  at::parallel_for(0, rows.count, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float inv = 1.0f / scale.data_ptr<float>()[r];
      const float zp = static_cast<float>(zero_point.data_ptr<int32_t>()[r]);
      const float* x = rows.row(r);
      const uint8_t* k = rows.keep_row(r);
      if (wide) {
        int16_t* out = codes.data_ptr<int16_t>() + r * rows.width;
        if (k)
          codes_of_row<int16_t, true>(x, k, out, rows.width, inv, zp, qmin, qmax);
        else
          codes_of_row<int16_t, false>(x, k, out, rows.width, inv, zp, qmin, qmax);
      } else {
        int8_t* out = codes.data_ptr<int8_t>() + r * rows.width;
        if (k)
          codes_of_row<int8_t, true>(x, k, out, rows.width, inv, zp, qmin, qmax);
        else
          codes_of_row<int8_t, false>(x, k, out, rows.width, inv, zp, qmin, qmax);
      }
    }
  });
  return codes;
}

namespace {

template <typename Code>
void dequantize_row(const Code* codes, float* out, int64_t n, float zero_point, float scale) {
  for (int64_t k = 0; k < n; ++k) out[k] = (static_cast<float>(codes[k]) - zero_point) * scale;
}

}  // namespace

at::Tensor dequantize_rows(const at::Tensor& codes_in, const RowQuantParams& params) {
  const at::Tensor scale = params.scale.to(torch::kFloat).contiguous();
  const at::Tensor zero_point = params.zero_point.to(torch::kFloat).contiguous();
  if (codes_in.dim() != 2 || (codes_in.scalar_type() != torch::kChar && codes_in.scalar_type() != torch::kShort) ||
      scale.dim() != 1 || scale.size(0) != codes_in.size(0) || zero_point.sizes() != scale.sizes())
    return (codes_in.to(torch::kFloat) - zero_point.unsqueeze(1)) * scale.unsqueeze(1);
  // One pass, the same float arithmetic as the expression above: (code − z) · s, rounded once each.
  const at::Tensor codes = codes_in.contiguous();
  const int64_t rows = codes.size(0), width = codes.size(1);
  at::Tensor out = torch::empty({rows, width}, torch::kFloat);
  const float* s = scale.data_ptr<float>();
  const float* z = zero_point.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const bool wide = codes.scalar_type() == torch::kShort;
  at::parallel_for(0, rows, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (wide)
        dequantize_row(codes.data_ptr<int16_t>() + r * width, o + r * width, width, z[r], s[r]);
      else
        dequantize_row(codes.data_ptr<int8_t>() + r * width, o + r * width, width, z[r], s[r]);
    }
  });
  return out;
}

}  // namespace adze
