#include "runtime/attention.h"

#include <ATen/ATen.h>
#include <xmmintrin.h>

#include <algorithm>

#include "runtime/buffer_pool.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/parallel.h"

namespace adze {
namespace packed {
namespace {

constexpr int64_t kBlock = 16;  // query rows a block: whole vectors of keys at 8 and 16 lanes
// The fill is negligible in a row whose largest allowed score exceeds it by this much: e^−110 is 0 in float both
// for the runtime's exp (0 below −87.3) and for ATen's (0 below about −104), so the masked keys add exact zeros.
constexpr float kNegligible = 110.0f;
// Heads are split over the threads from this many multiply-adds on (heads·T·S·(d + dv)): fortune-gpt's 64
// tokens and 4 heads have 4× as many, fmnist-vit's 17 tokens a seventh.
constexpr int64_t kParallelWork = int64_t{1} << 18;

bool is_float(const at::Tensor& x) { return x.defined() && x.scalar_type() == at::kFloat; }

bool fits(const at::Tensor& q, const at::Tensor& kt, const at::Tensor& v, const at::Tensor& mask) {
  if (!is_float(q) || !is_float(kt) || !is_float(v) || q.dim() < 3 || q.dim() > 4 || kt.dim() != q.dim() ||
      v.dim() != q.dim())
    return false;
  for (int64_t d = 0; d + 2 < q.dim(); ++d)
    if (kt.size(d) != q.size(d) || v.size(d) != q.size(d)) return false;
  const int64_t T = q.size(-2), S = kt.size(-1);
  if (q.numel() == 0 || kt.numel() == 0 || v.numel() == 0 || q.size(-1) != kt.size(-2) || v.size(-2) != S) return false;
  if (!mask.defined()) return true;
  if (mask.scalar_type() != at::kBool || mask.dim() < 2 || mask.size(-2) != T || mask.size(-1) != S ||
      !mask.is_contiguous())
    return false;
  return mask.numel() == T * S;  // leading dimensions of size 1 only
}

// The chain as the graph wrote it, for what fits() refuses.
at::Tensor aten_chain(const at::Tensor& q, const at::Tensor& kt, const at::Tensor& v, const AttentionMask& m,
                      float alpha) {
  at::Tensor scores = at::matmul(q, kt);
  if (alpha != 1) scores = scores * alpha;
  if (m.mask.defined()) scores = scores.masked_fill(m.mask, m.fill);
  return at::matmul(at::softmax(scores, -1), v);
}

// One (batch, head): the blocks of query rows, each through its scores, softmax and product with V.
struct Head {
  const float *q, *kt, *v;
  float* out;
};

struct Shape {
  int64_t T, S, d, dv;
  int64_t q_rs, q_cs, k_rs, k_cs, v_rs, v_cs, ldo;
};

// Kᵀ [d, S] into `keys`, row-contiguous. Keys that are rows of their own (kᵀ a transposed view, k_rs = 1) go
// 4×4 at a time through SSE registers (x86-64's baseline): a strided scatter of single values cost as much as
// the products it saves on fortune-gpt's heads.
void transpose_keys(const float* kt, const Shape& s, float* keys) {
  int64_t j = 0;
  if (s.k_rs == 1)
    for (; j + 4 <= s.S; j += 4) {
      int64_t p = 0;
      for (; p + 4 <= s.d; p += 4) {
        __m128 r0 = _mm_loadu_ps(kt + j * s.k_cs + p), r1 = _mm_loadu_ps(kt + (j + 1) * s.k_cs + p),
               r2 = _mm_loadu_ps(kt + (j + 2) * s.k_cs + p), r3 = _mm_loadu_ps(kt + (j + 3) * s.k_cs + p);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(keys + p * s.S + j, r0);
        _mm_storeu_ps(keys + (p + 1) * s.S + j, r1);
        _mm_storeu_ps(keys + (p + 2) * s.S + j, r2);
        _mm_storeu_ps(keys + (p + 3) * s.S + j, r3);
      }
      for (; p < s.d; ++p)
        for (int64_t q = j; q < j + 4; ++q) keys[p * s.S + q] = kt[q * s.k_cs + p];
    }
  for (; j < s.S; ++j)
    for (int64_t p = 0; p < s.d; ++p) keys[p * s.S + j] = kt[p * s.k_rs + j * s.k_cs];
}

// `scores` holds kBlock rows of S; `keys` d rows of S, Kᵀ copied row-contiguous where its rows are not (the
// kernels' fast layout, built once for all the blocks).
void run_head(const Head& h, const Shape& s, const AttentionMask& m, const std::vector<int64_t>* prefixes,
              const runtime::FloatKernels& kern, float alpha, float* scores, float* keys) {
  const float* kt = h.kt;
  int64_t k_rs = s.k_rs;
  if (s.k_cs != 1) {
    transpose_keys(h.kt, s, keys);
    kt = keys, k_rs = s.S;
  }
  const bool* mask = m.mask.defined() ? m.mask.data_ptr<bool>() : nullptr;
  const float threshold = m.fill + kNegligible;
  for (int64_t r0 = 0; r0 < s.T; r0 += kBlock) {
    const int64_t rows = std::min(kBlock, s.T - r0);
    int64_t n = s.S;  // keys this block reads
    if (prefixes) n = *std::max_element(prefixes->begin() + r0, prefixes->begin() + r0 + rows);
    kern.matmul(h.q + r0 * s.q_rs, s.q_rs, s.q_cs, kt, k_rs, 1, scores, s.S, rows, n, s.d, alpha);
    bool prefix = prefixes != nullptr;
    for (int64_t i = 0; i < rows && prefix; ++i) {
      const float* row = scores + i * s.S;
      bool above = false;  // some allowed score exceeds the threshold (false for NaN): mostly the first
      for (int64_t j = 0; j < (*prefixes)[r0 + i] && !above; ++j) above = row[j] > threshold;
      prefix = above;
    }
    if (prefixes && !prefix && n < s.S) {  // the fill matters here: every key, as masked_fill and softmax
      n = s.S;
      kern.matmul(h.q + r0 * s.q_rs, s.q_rs, s.q_cs, kt, k_rs, 1, scores, s.S, rows, n, s.d, alpha);
    }
    if (prefix) {
      kern.softmax_prefixes(scores, s.S, rows, prefixes->data() + r0, n);
    } else {
      for (int64_t i = 0; i < rows; ++i) {
        float* row = scores + i * s.S;
        if (mask)
          for (int64_t j = 0; j < s.S; ++j)
            if (mask[(r0 + i) * s.S + j]) row[j] = m.fill;
        kern.softmax(row, row, 1, s.S);
      }
    }
    kern.matmul(scores, s.S, 1, h.v, s.v_rs, s.v_cs, h.out + r0 * s.ldo, s.ldo, rows, s.dv, n, 1.0f);
  }
}

}  // namespace

std::optional<std::vector<int64_t>> mask_prefixes(const at::Tensor& mask) {
  if (!mask.defined() || mask.scalar_type() != at::kBool || mask.dim() < 2) return std::nullopt;
  const int64_t T = mask.size(-2), S = mask.size(-1);
  if (T * S != mask.numel() || S == 0) return std::nullopt;
  const at::Tensor m = mask.contiguous();
  const bool* p = m.data_ptr<bool>();
  std::vector<int64_t> out(static_cast<std::size_t>(T));
  for (int64_t i = 0; i < T; ++i, p += S) {
    const int64_t allowed = std::find(p, p + S, true) - p;
    if (allowed == 0 || !std::all_of(p + allowed, p + S, [](bool b) { return b; })) return std::nullopt;
    out[static_cast<std::size_t>(i)] = allowed;
  }
  return out;
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& kt, const at::Tensor& v, const AttentionMask& m,
                     float alpha, Isa isa) {
  if (!fits(q, kt, v, m.mask)) return aten_chain(q, kt, v, m, alpha);
  const int64_t r = q.dim(), batch = r == 4 ? q.size(0) : 1, heads = q.size(r - 3);
  Shape s{q.size(-2),    kt.size(-1),  q.size(-1),   v.size(-1), q.stride(-2), q.stride(-1), kt.stride(-2),
          kt.stride(-1), v.stride(-2), v.stride(-1), 0};
  // The mask's prefix form, if it has one and the fill is the kind that can be negligible.
  std::optional<std::vector<int64_t>> found;
  const std::vector<int64_t>* prefixes = nullptr;
  if (m.mask.defined()) {
    const std::optional<std::vector<int64_t>>* given = m.prefixes;
    if (!given || (given->has_value() && static_cast<int64_t>((*given)->size()) != s.T)) {
      found = mask_prefixes(m.mask);
      given = &found;
    }
    if (*given && m.fill < 0) prefixes = &**given;
  }
  // Two batch dimensions: [batch, T, heads, dv] in memory, seen as [batch, heads, T, dv].
  at::Tensor out =
      r == 4 ? runtime::empty_output({batch, s.T, heads, s.dv}) : runtime::empty_output({heads, s.T, s.dv});
  s.ldo = r == 4 ? heads * s.dv : s.dv;
  const int64_t head_out = r == 4 ? s.dv : s.T * s.dv, batch_out = s.T * heads * s.dv;
  const auto stride = [](const at::Tensor& t, int64_t d) { return t.dim() == 4 ? t.stride(d) : 0; };
  const float *qp = q.data_ptr<float>(), *kp = kt.data_ptr<float>(), *vp = v.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const runtime::FloatKernels& kern = runtime::float_kernels(isa);
  const int64_t all = batch * heads;
  runtime::maybe_parallel(all > 1 && all * s.T * s.S * (s.d + s.dv) >= kParallelWork, [&] {
    // Each thread's scratch, kept between calls: a warm run allocates nothing.
    thread_local std::vector<float> scores, keys;
    if (scores.size() < static_cast<std::size_t>(kBlock * s.S)) scores.resize(static_cast<std::size_t>(kBlock * s.S));
    if (s.k_cs != 1 && keys.size() < static_cast<std::size_t>(s.d * s.S))
      keys.resize(static_cast<std::size_t>(s.d * s.S));
    runtime::work_share(all, [&](int64_t bh) {
      const int64_t b = bh / heads, h = bh % heads;
      const Head head{qp + b * stride(q, 0) + h * q.stride(r - 3), kp + b * stride(kt, 0) + h * kt.stride(r - 3),
                      vp + b * stride(v, 0) + h * v.stride(r - 3), op + b * batch_out + h * head_out};
      run_head(head, s, m, prefixes, kern, alpha, scores.data(), keys.data());
    });
  });
  return r == 4 ? out.permute({0, 2, 1, 3}) : out;
}

}  // namespace packed
}  // namespace adze
