#include "runtime/packed_ops.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/isa.h"
#include "runtime/buffer_pool.h"
#include "runtime/float_ops.h"
#include "runtime/parallel.h"

namespace adze {
namespace packed {
namespace {

constexpr int64_t kTileRows = 64;  // output rows the fp32 path decodes at a time

// Encoded-layout column j holds the layer's column gather()[j] (the permutation repeated over the runs).
// Rows [M, K] from the layer's column order into the encoded one (`to_encoded`), or back: a loop over the
// permutation the view holds, with no index tensor built per call.
at::Tensor permute_columns(const LayerView& layer, const at::Tensor& rows, bool to_encoded) {
  const int64_t M = rows.size(0), K = rows.size(1);
  const int64_t* g = layer.gather().data();
  at::Tensor out = runtime::empty_output(rows.sizes());
  const float* from = rows.data_ptr<float>();
  float* to = out.data_ptr<float>();
  for (int64_t r = 0; r < M; ++r, from += K, to += K)
    for (int64_t j = 0; j < K; ++j) {
      if (to_encoded)
        to[j] = from[g[j]];
      else
        to[g[j]] = from[j];
    }
  return out;
}

at::Tensor float_bias(const at::Tensor& bias, int64_t channels, const char* op) {
  if (!bias.defined()) return {};
  // As it is where it can be (a file tensor usually is): a conversion is a call through ATen's dispatcher.
  const at::Tensor b =
      bias.scalar_type() == at::kFloat && bias.is_contiguous() ? bias : bias.to(torch::kFloat).contiguous();
  if (b.numel() != channels)
    throw Error(ErrorKind::kInvalidArgument, std::string("packed ") + op + ": a bias of " + std::to_string(b.numel()) +
                                                 " values for " + std::to_string(channels) + " outputs");
  return b;
}

// Per-thread buffers of the quantized activations, kept between calls so that a warm run allocates none.
struct QuantScratch {
  std::vector<uint8_t> codes, rows, padded, planes;
  std::vector<float> scale, mid, partial;
  std::vector<int32_t> zero;
};

QuantScratch& quant_scratch() {
  thread_local QuantScratch s;
  return s;
}

template <typename T>
T* sized(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
  return v.data();
}

// How the integer kernels will read M activation rows of a layer: from its prebuilt panels (built at the
// layer's first call with that many rows, only for layers that use them) in the panels' positions and order,
// or from rows of k_pad bytes in the encoded order.
struct ActivationLayout {
  const runtime::QPanels* panels = nullptr;
  int64_t stride = 0;               ///< bytes per activation row
  const int64_t* gather = nullptr;  ///< the encoded order's permutation still to apply (null: none)
};

ActivationLayout activation_layout(const LayerView& layer, int64_t rows) {
  ActivationLayout a;
  a.panels = runtime::panel_rows(rows, layer.integer_weights()->layout) ? layer.panels() : nullptr;
  const bool on_panels = a.panels && !a.panels->empty();  // empty: this ISA has no microkernel
  a.stride = on_panels ? a.panels->k() : layer.integer_weights()->layout.k_pad;
  if (!layer.gather().empty() && !(on_panels && a.panels->in_layer_order())) a.gather = layer.gather().data();
  return a;
}

// M rows of K floats (K = the layer's reduction, in the layer's own column order) through the integer kernels
// into y [M, C] (rows C apart): quantized with `act`, or per row; `epilogue`: what the kernels do to the outputs
// (its panels are the layer's).
void integer_rows(const LayerView& layer, const float* rows, int64_t M, const float* bias, const ActivationQuant* act,
                  runtime::QGemmOptions epilogue, float* y) {
  const runtime::QWeights& w = *layer.integer_weights();
  const int64_t K = layer.reduction(), C = layer.channels();
  const ActivationLayout l = activation_layout(layer, M);
  QuantScratch& s = quant_scratch();
  uint8_t* const q = sized(s.codes, M * l.stride);
  float* const scale = sized(s.scale, M);
  int32_t* const zero = sized(s.zero, M);
  if (act)
    runtime::quantize_rows_static(rows, M, K, K, l.gather, l.stride, act->scale, act->zero_point, q, scale, zero);
  else
    runtime::quantize_rows_dynamic(rows, M, K, K, l.gather, l.stride, q, scale, zero);
  epilogue.panels = l.panels;
  runtime::qgemm(w, {q, M, l.stride, scale, zero}, bias, y, C, active_isa(), epilogue);
}

// A residual the kernels add in their epilogue: float, of the output's sizes, dense in the output's memory
// `format` (as it lies where it is, which takes no ATen call; a copy otherwise), else undefined (added after
// the product).
at::Tensor epilogue_residual(const Residual& residual, at::IntArrayRef sizes, c10::MemoryFormat format) {
  const at::Tensor& add = residual.add;
  if (!add.defined() || add.scalar_type() != at::kFloat || add.sizes() != sizes) return {};
  return add.is_contiguous(format) ? add : add.contiguous(format);
}

// Whether the output ops are left to ops_after: a residual the kernels cannot add (one that broadcasts).
bool after_kernels(const OutputOps& out, const at::Tensor& residual_rows) {
  return out.residual.add.defined() && !residual_rows.defined();
}

// The kernels' share of the output ops (QGemmOptions' clamp, residual, fake quantizations), the residual as they
// read it (`rows` floats apart; undefined: none); nothing where the ops come after the kernels.
runtime::QGemmOptions kernel_epilogue(const OutputOps& out, const at::Tensor& residual_rows, int64_t rows) {
  runtime::QGemmOptions o;
  if (after_kernels(out, residual_rows)) return o;
  o.lo = out.clamp.lo;
  o.hi = out.clamp.hi;
  if (residual_rows.defined()) {
    o.residual = residual_rows.data_ptr<float>();
    o.residual_stride = rows;
    if (out.residual.quant) {
      o.residual_quant_scale = out.residual.quant->scale;
      o.residual_quant_zero = out.residual.quant->zero_point;
    }
  }
  if (out.quant) {
    o.quant_scale = out.quant->scale;
    o.quant_zero = out.quant->zero_point;
  }
  return o;
}

// The output ops where the kernels did not do them, on their output `y` (changed in place where it can be), as
// the unfused ops: the residual branch's fake quantization and the add (broadcasting, as ATen's), the clamp, the
// output's fake quantization.
at::Tensor ops_after(at::Tensor y, const OutputOps& out) {
  if (out.residual.add.defined()) {
    apply_clamp_and_quant(y, {}, out.residual.quant);
    y = y + out.residual.add;
  }
  apply_clamp_and_quant(y, out.clamp, out.quant);
  return y;
}

// x [..., K] (float, contiguous) through the integer kernels: [..., C].
at::Tensor integer_product(const LayerView& layer, const at::Tensor& rows, const at::Tensor& bias,
                           const ActivationQuant* act, const OutputOps& out) {
  at::DimVector shape(rows.sizes().begin(), rows.sizes().end());
  shape.back() = layer.channels();
  const at::Tensor r = epilogue_residual(out.residual, shape, c10::MemoryFormat::Contiguous);
  at::Tensor y = runtime::empty_output(shape);
  integer_rows(layer, rows.data_ptr<float>(), rows.numel() / layer.reduction(),
               bias.defined() ? bias.data_ptr<float>() : nullptr, act, kernel_epilogue(out, r, layer.channels()),
               y.data_ptr<float>());
  return after_kernels(out, r) ? ops_after(y, out) : y;
}

at::Tensor float_contiguous(const at::Tensor& x) {
  return x.scalar_type() == at::kFloat && x.is_contiguous() ? x : runtime::contiguous_output(x.to(torch::kFloat));
}

// A convolution's geometry, channels last: input [N, H, W, Cin], kernel kh x kw, output [N, oh, ow, ·].
struct ConvGeometry {
  int64_t N = 0, H = 0, W = 0, Cin = 0, kh = 0, kw = 0, oh = 0, ow = 0;
  int64_t sy = 1, sx = 1, py = 0, px = 0, dy = 1, dx = 1;  // stride, padding, dilation
  int64_t rows() const { return N * oh * ow; }
  int64_t input_values() const { return N * H * W * Cin; }
  bool pointwise() const { return kh == 1 && kw == 1 && py == 0 && px == 0; }
};

// Values of a convolution's input whose dynamic range is taken as one piece (on one thread).
constexpr int64_t kRangePiece = int64_t{1} << 13;

// A convolution's activation rows (qgemm.h: QRowSource), made inside the parallel region of its product: one row
// of codes per output position, in the column order (kh, kw, Cin), the channels permuted as the encoded layout
// holds them where the kernels read that order, the zero padding as the zero point. Bytes past the K of a row
// meet zero weights: whatever the scratch holds there adds nothing.
// - The input's scale and zero point: calibrated (`act`); or, for a 1x1 convolution of stride 1, one per output
//   position, as a linear layer's tokens have; or one dynamic range for the whole tensor: given (`known`, taken
//   by the op that wrote the input), else taken in prepare() in pieces over the threads and combined, or by each
//   thread for itself in make_private() and make_band() (min and max: the same bytes on any number of threads).
// - The input channels last, or (`planar`) an image in planes, whose rows are interleaved as they are quantized.
// - A 1x1 convolution without padding quantizes each row straight from its pixel in make(): a strided one reads
//   only the pixels it uses, and nothing is quantized twice.
// - Any other quantizes the input in prepare(), into a border of zero points where it is padded, and make()
//   copies each patch out of it: a tap row (kw pixels, channels last) at a time, or a pixel at a time where the
//   channels are permuted or the columns dilated.
class PatchRows final : public runtime::QRowSource {
 public:
  PatchRows(const float* x, bool planar, const ConvGeometry& g, const ActivationQuant* act, const ValueRange* known,
            const ActivationLayout& l, QuantScratch& scratch)
      : x_(x), planar_(planar), g_(g), stride_(l.stride), perm_(l.gather) {
    const int64_t M = g.rows();
    scales_ = sized(scratch.scale, M);
    zeros_ = sized(scratch.zero, M);
    rows_ = sized(scratch.rows, M * stride_);
    const bool one_by_one = g.pointwise();
    if (planar && one_by_one)
      throw Error(ErrorKind::kInternal, "packed conv2d: a pointwise convolution reads its input channels last");
    mode_ = !one_by_one                     ? (perm_ || g.dx != 1 ? Mode::kPixels : Mode::kTaps)
            : act || g.sy != 1 || g.sx != 1 ? Mode::kDirect
                                            : Mode::kPerRow;
    if (act) {
      s_ = act->scale;
      z_ = act->zero_point;
    }
    whole_range_ = !act && mode_ != Mode::kPerRow;
    if (whole_range_ && known && known->known) {  // taken by the layer that wrote the input
      runtime::range_scale(known->lo, known->hi, &s_, &z_);
      whole_range_ = false;
    }
    const int64_t total = g.input_values();
    if (whole_range_) partial_ = sized(scratch.partial, 2 * pieces(total));
    if (mode_ == Mode::kTaps || mode_ == Mode::kPixels) {
      by_ = mode_ == Mode::kTaps ? g.py : 0;
      bx_ = mode_ == Mode::kTaps ? g.px : 0;
      // kCopyChunk bytes of slack: a tap row's copy may read up to a chunk past the last pixel.
      input_ = sized(scratch.padded, padded_bytes());
      const int64_t span = g.kw * g.Cin;
      // The first tap row whose chunks would run past the row's stride into the next row's bytes, which another
      // thread may have made already: it and the ones after it are copied exactly (a 3x3 convolution of one input
      // channel: 3-byte tap rows in a 12-byte row).
      const int64_t chunked = (span + kCopyChunk - 1) / kCopyChunk * kCopyChunk;
      exact_from_ = g.kh;
      while (exact_from_ > 0 && (exact_from_ - 1) * span + chunked > stride_) --exact_from_;
    }
    parallel_ = total >= (int64_t{1} << 14) || M * g.kh * g.kw * g.Cin >= (int64_t{1} << 16);
  }

  const uint8_t* rows() const { return rows_; }
  const float* scales() const { return scales_; }
  const int32_t* zeros() const { return zeros_; }
  bool parallel() const override { return parallel_; }

  void prepare() override {
    const int64_t total = g_.input_values();
    if (whole_range_) {
      runtime::work_for(pieces(total), [this](int64_t p) { piece_range(p, partial_ + 2 * p, partial_ + 2 * p + 1); });
      runtime::work_single([this] {
        combine_range([this](int64_t p, float* lo, float* hi) { *lo = partial_[2 * p], *hi = partial_[2 * p + 1]; },
                      &s_, &z_);
      });
    }
    if (!input_) return;
    runtime::work_for(g_.N * (g_.H + 2 * by_), [this](int64_t r) { quantize_input_row(r, input_, s_, z_); });
  }

  void make(int64_t m0, int64_t m1) override { make_rows(m0, m1, input_, s_, z_, rows_, scales_, zeros_, 0); }

  // Every row on this thread, into its own scratch.
  bool makes_private() const override { return true; }
  void make_private(uint8_t* rows, float* scales, int32_t* zeros) override {
    make_alone(0, g_.rows(), rows, scales, zeros, 0);
  }

  // Rows m0..m1 on this thread, into its own rows (the input rows above and below a band are quantized by both
  // threads).
  bool makes_band() const override { return true; }
  void make_band(int64_t m0, int64_t m1, uint8_t* rows, float* scales, int32_t* zeros) override {
    make_alone(m0, m1, rows, scales, zeros, m0);
  }

 private:
  enum class Mode { kPerRow, kDirect, kTaps, kPixels };

  // Rows m0..m1 made on this thread alone into rows_out, scales and zeros (indexed from row `first`): the range's
  // pieces in turn (the min and max of the same pieces, so the same scale and zero point), and only the input
  // rows these rows read quantized, into this thread's own bordered copy.
  void make_alone(int64_t m0, int64_t m1, uint8_t* rows_out, float* scales, int32_t* zeros, int64_t first) const {
    float s = s_;
    int32_t z = z_;
    if (whole_range_) combine_range([this](int64_t p, float* lo, float* hi) { piece_range(p, lo, hi); }, &s, &z);
    uint8_t* input = nullptr;
    if (input_ && m1 > m0) {
      input = sized(quant_scratch().padded, padded_bytes());
      const int64_t per_image = g_.oh * g_.ow, Hp = g_.H + 2 * by_, reach = (g_.kh - 1) * g_.dy;
      for (int64_t n = m0 / per_image; n <= (m1 - 1) / per_image; ++n) {
        const int64_t oy0 = std::max(m0 - n * per_image, int64_t{0}) / g_.ow;
        const int64_t oy1 = (std::min(m1 - n * per_image, per_image) - 1) / g_.ow;
        // Bordered rows (kTaps) count from the border; unbordered ones (kPixels) from the padding's edge.
        const int64_t first = oy0 * g_.sy - (by_ ? 0 : g_.py), last = oy1 * g_.sy - (by_ ? 0 : g_.py) + reach;
        for (int64_t r = std::max(first, int64_t{0}); r <= std::min(last, Hp - 1); ++r)
          quantize_input_row(n * Hp + r, input, s, z);
      }
    }
    make_rows(m0, m1, input, s, z, rows_out, scales, zeros, first);
  }

  int64_t padded_bytes() const { return g_.N * (g_.H + 2 * by_) * (g_.W + 2 * bx_) * g_.Cin + kCopyChunk; }

  // The min and max of piece p of the input (widened to include 0).
  void piece_range(int64_t p, float* lo, float* hi) const {
    const int64_t total = g_.input_values();
    runtime::value_range(x_ + p * kRangePiece, std::min(kRangePiece, total - p * kRangePiece), lo, hi);
  }
  // The scale and zero point of the pieces' ranges (piece(p, &lo, &hi)) combined in piece order: the same bytes
  // whichever threads took the pieces.
  template <typename PieceRange>
  void combine_range(const PieceRange& piece, float* s, int32_t* z) const {
    float lo = 0.0f, hi = 0.0f;
    for (int64_t p = 0; p < pieces(g_.input_values()); ++p) {
      float piece_lo = 0.0f, piece_hi = 0.0f;
      piece(p, &piece_lo, &piece_hi);
      lo = std::min(lo, piece_lo);
      hi = std::max(hi, piece_hi);
    }
    runtime::range_scale(lo, hi, s, z);
  }

  // Row r of the bordered input (image r / Hp, row r % Hp) quantized into `input`, the border the zero point.
  void quantize_input_row(int64_t r, uint8_t* input, float s, int32_t z) const {
    const int64_t Hp = g_.H + 2 * by_, Wp = g_.W + 2 * bx_, C = g_.Cin;
    const auto u8z = static_cast<uint8_t>(z);
    uint8_t* const dst = input + r * Wp * C;
    const int64_t iy = r % Hp - by_;
    if (iy < 0 || iy >= g_.H) return void(std::fill_n(dst, Wp * C, u8z));
    float unused_s = 0;
    int32_t unused_z = 0;
    std::fill_n(dst, bx_ * C, u8z);
    if (planar_) {  // each channel's row quantized as it lies, then the codes interleaved: channels last
      const int64_t W = g_.W;
      uint8_t* const planes = sized(quant_scratch().planes, C * W);
      const float* const plane_row = x_ + (r / Hp * C * g_.H + iy) * W;
      for (int64_t c = 0; c < C; ++c)
        runtime::quantize_rows_static(plane_row + c * g_.H * W, 1, W, W, nullptr, W, s, z, planes + c * W, &unused_s,
                                      &unused_z);
      uint8_t* const pixels = dst + bx_ * C;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t px = 0; px < W; ++px) pixels[px * C + c] = planes[c * W + px];
    } else {
      runtime::quantize_rows_static(x_ + (r / Hp * g_.H + iy) * g_.W * C, 1, g_.W * C, g_.W * C, nullptr, g_.W * C, s,
                                    z, dst + bx_ * C, &unused_s, &unused_z);
    }
    std::fill_n(dst + (bx_ + g_.W) * C, bx_ * C, u8z);
  }

  // Rows m0..m1 into rows_out (stride_ apart), scales and zeros, which hold rows from `first` on, from the
  // quantized input (kTaps, kPixels).
  void make_rows(int64_t m0, int64_t m1, const uint8_t* input, float s, int32_t z, uint8_t* rows_out, float* scales,
                 int32_t* zeros, int64_t first) const {
    const int64_t C = g_.Cin, per_image = g_.oh * g_.ow;
    rows_out += (m0 - first) * stride_;  // from here on, row m lies at rows_out + (m - m0) * stride_
    scales += m0 - first;
    zeros += m0 - first;
    if (mode_ == Mode::kPerRow)
      return runtime::quantize_rows_dynamic(x_ + m0 * C, m1 - m0, C, C, perm_, stride_, rows_out, scales, zeros);
    std::fill(scales, scales + (m1 - m0), s);
    std::fill(zeros, zeros + (m1 - m0), z);
    if (mode_ == Mode::kDirect) {
      if (g_.sy == 1 && g_.sx == 1 && !perm_ && stride_ == C) {  // the rows are the input's pixels as they lie
        float unused_s = 0;
        int32_t unused_z = 0;
        return runtime::quantize_rows_static(x_ + m0 * C, 1, (m1 - m0) * C, (m1 - m0) * C, nullptr, (m1 - m0) * C, s, z,
                                             rows_out, &unused_s, &unused_z);
      }
      for (int64_t m = m0; m < m1;) {  // a run of positions along one output row: pixels sx apart
        const int64_t n = m / per_image, oy = m / g_.ow % g_.oh, ox = m % g_.ow;
        const int64_t count = std::min(m1 - m, g_.ow - ox);
        const float* pixel = x_ + ((n * g_.H + oy * g_.sy) * g_.W + ox * g_.sx) * C;
        runtime::quantize_rows_static(pixel, count, C, g_.sx * C, perm_, stride_, s, z, rows_out + (m - m0) * stride_,
                                      scales + (m - m0), zeros + (m - m0));
        m += count;
      }
      return;
    }
    const int64_t Hp = g_.H + 2 * by_, Wp = g_.W + 2 * bx_, span = g_.kw * C;
    if (mode_ == Mode::kTaps) {
      // In locals, and the position stepped rather than divided out: the copies store bytes, which may alias any
      // member, so each tap row would reload them (perf annotate, ResNet's stem at one thread: the loads and three
      // divisions per row beside the copies).
      const int64_t kh = g_.kh, ow = g_.ow, oh = g_.oh, exact_from = exact_from_, row_stride = stride_;
      const int64_t tap_step = g_.dy * Wp * C, column_step = g_.sx * C, row_step = g_.sy * Wp * C;
      int64_t n = m0 / per_image, oy = m0 / ow % oh, ox = m0 % ow;
      const uint8_t* from = input + ((n * Hp + oy * g_.sy) * Wp + ox * g_.sx) * C;
      uint8_t* row = rows_out;
      for (int64_t m = m0; m < m1; ++m, row += row_stride) {
        uint8_t* to = row;
        for (int64_t i = 0; i < kh; ++i, to += span) copy_chunks(to, from + i * tap_step, span, i >= exact_from);
        from += column_step;
        if (++ox < ow) continue;
        ox = 0;
        if (++oy < oh) {
          from += row_step - ow * column_step;
          continue;
        }
        oy = 0;
        ++n;
        from = input + n * Hp * Wp * C;
      }
      return;
    }
    for (int64_t m = m0; m < m1; ++m) {
      const int64_t n = m / per_image, oy = m / g_.ow % g_.oh, ox = m % g_.ow;
      uint8_t* row = rows_out + (m - m0) * stride_;
      for (int64_t i = 0; i < g_.kh; ++i) {
        const int64_t iy = oy * g_.sy - g_.py + i * g_.dy;
        for (int64_t j = 0; j < g_.kw; ++j, row += C) {
          const int64_t ix = ox * g_.sx - g_.px + j * g_.dx;
          if (iy < 0 || iy >= g_.H || ix < 0 || ix >= g_.W) {
            std::fill(row, row + C, static_cast<uint8_t>(z));
            continue;
          }
          const uint8_t* pixel = input + ((n * g_.H + iy) * g_.W + ix) * C;
          if (perm_)
            for (int64_t c = 0; c < C; ++c) row[c] = pixel[perm_[c]];
          else
            std::memcpy(row, pixel, static_cast<std::size_t>(C));
        }
      }
    }
  }

  static constexpr int64_t kCopyChunk = 16;
  // `span` bytes in chunks of kCopyChunk, each a copy of constant size, inlined: a call to memcpy per tap row
  // cost ResNet's stem (7 taps of 21 bytes per output position) a sixth of its time (conv_bench, stem, W8A8, one
  // thread, the builds alternated three times: 78.7 -> 66.2 us). Unless `exact`, the last chunk may
  // write up to kCopyChunk − 1 bytes past the span (the next tap row's place, which its copy then takes, or the
  // row's padding) and read as far past `from` (the bordered input has that much slack); exact, it ends on the
  // span, overlapping the chunk before it.
  // From 64 bytes on memcpy itself is faster (its wide vectors: ResNet's layer1, 192 bytes, 2% slower in chunks).
  static void copy_chunks(uint8_t* to, const uint8_t* from, int64_t span, bool exact) {
    if (span >= 64 || (exact && span < kCopyChunk)) return void(std::memcpy(to, from, static_cast<std::size_t>(span)));
    int64_t b = 0;
    for (; b + kCopyChunk <= span; b += kCopyChunk) std::memcpy(to + b, from + b, kCopyChunk);
    if (b == span) return;
    if (exact) b = span - kCopyChunk;
    std::memcpy(to + b, from + b, kCopyChunk);
  }
  static int64_t pieces(int64_t total) { return (total + kRangePiece - 1) / kRangePiece; }

  const float* x_;
  bool planar_;  // x_ is [N, Cin, H, W] (a model's input image) rather than channels last
  ConvGeometry g_;
  int64_t stride_;
  const int64_t* perm_;  // per run of Cin channels
  Mode mode_;
  bool whole_range_ = false, parallel_ = false;
  int64_t exact_from_ = 0;  // kTaps: the tap rows from this one on are copied exactly (chunks would leave the row)
  float s_ = 0;
  int32_t z_ = 0;
  uint8_t* rows_ = nullptr;
  float* scales_ = nullptr;
  int32_t* zeros_ = nullptr;
  float* partial_ = nullptr;  // per piece of the input, its min and max
  uint8_t* input_ = nullptr;  // the quantized input, channels last, with a border of by_ x bx_ pixels
  int64_t by_ = 0, bx_ = 0;
};

}  // namespace

at::Tensor packed_matmul(const LayerView& layer, const at::Tensor& x, const at::Tensor& bias,
                         const ActivationQuant* act, bool dynamic, const OutputOps& out) {
  const int64_t C = layer.channels(), K = layer.reduction();
  if (x.dim() == 0 || x.size(-1) != K)
    throw Error(ErrorKind::kInvalidArgument,
                "packed matmul: input " + c10::str(x.sizes()) + " does not end in " + std::to_string(K));
  const at::Tensor b = float_bias(bias, C, "matmul");
  if (layer.integer_weights() && (act || dynamic)) return integer_product(layer, float_contiguous(x), b, act, out);
  at::Tensor x2 = x.reshape({-1, K}).to(torch::kFloat).contiguous();
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end() - 1);
  shape.push_back(C);
  if (!layer.gather().empty()) x2 = permute_columns(layer, x2, true);
  at::Tensor y = runtime::empty_output({x2.size(0), C});
  std::vector<float> tile(static_cast<std::size_t>(std::min(kTileRows, C) * K));
  for (int64_t r0 = 0; r0 < C; r0 += kTileRows) {
    const int64_t rows = std::min(kTileRows, C - r0);
    layer.decode_rows(r0, r0 + rows, tile.data());
    y.narrow(1, r0, rows).copy_(torch::mm(x2, torch::from_blob(tile.data(), {rows, K}, torch::kFloat).t()));
  }
  y = y.reshape(shape);
  if (b.defined()) y = y + b;
  return ops_after(y, out);
}

at::Tensor packed_factored_matmul(const LayerView& first, const LayerView& second, const at::Tensor& x,
                                  const at::Tensor& bias, const ActivationQuant* act, const OutputClamp& clamp) {
  if (!first.integer_weights() || !second.integer_weights() || first.channels() != second.reduction())
    throw Error(ErrorKind::kInternal, "packed factored matmul: factors " + std::to_string(first.channels()) + " and " +
                                          std::to_string(second.reduction()) + " wide, or without integer weights");
  const int64_t K = first.reduction(), r = first.channels();
  if (x.dim() == 0 || x.size(-1) != K)
    throw Error(ErrorKind::kInvalidArgument,
                "packed factored matmul: input " + c10::str(x.sizes()) + " does not end in " + std::to_string(K));
  const at::Tensor b = float_bias(bias, second.channels(), "factored matmul");
  const at::Tensor in = float_contiguous(x);
  const int64_t M = in.numel() / K;
  float* const mid = sized(quant_scratch().mid, M * r);  // the first factor's product, never a tensor
  integer_rows(first, in.data_ptr<float>(), M, nullptr, act, {}, mid);
  at::DimVector shape(in.sizes().begin(), in.sizes().end());
  shape.back() = second.channels();
  at::Tensor y = runtime::empty_output(shape);
  integer_rows(second, mid, M, b.defined() ? b.data_ptr<float>() : nullptr, nullptr, {nullptr, clamp.lo, clamp.hi},
               y.data_ptr<float>());
  return y;
}

namespace {

// Rows [r0, r0 + n) of packed weights, as a matrix of their own.
runtime::QWeights rows_of(const runtime::QWeights& w, int64_t r0, int64_t n) {
  runtime::QWeights v = w;
  v.layout.rows = n;
  v.planes += r0 * w.layout.plane_row_bytes();
  if (v.mask) v.mask += r0 * w.layout.mask_row_words();
  v.offset += r0;
  v.scale += r0 * w.layout.groups;
  v.wsum += r0 * w.layout.groups;
  return v;
}

}  // namespace

at::Tensor packed_monarch_matmul(const LayerView& first, const LayerView& second, const at::Tensor& x,
                                 const at::Tensor& bias, bool integer, const OutputClamp& clamp) {
  const int64_t b = second.reduction(), C = second.channels(), Kb = first.reduction(), K = b * Kb;
  if (first.channels() != b * b || C % b != 0)
    throw Error(ErrorKind::kInternal, "packed monarch: factors [" + std::to_string(first.channels()) + ", " +
                                          std::to_string(Kb) + "] and [" + std::to_string(C) + ", " +
                                          std::to_string(b) + "] are not the blocks of one layer");
  if (x.dim() == 0 || x.size(-1) != K)
    throw Error(ErrorKind::kInvalidArgument,
                "packed monarch: input " + c10::str(x.sizes()) + " does not end in " + std::to_string(K));
  const at::Tensor bs = float_bias(bias, C, "monarch");
  const at::Tensor in = float_contiguous(x);
  const int64_t M = in.numel() / K, Cb = C / b;
  at::DimVector shape(in.sizes().begin(), in.sizes().end());
  shape.back() = C;
  const runtime::QWeights *wr = first.integer_weights(), *wl = second.integer_weights();
  if (!integer || !wr || !wl || !first.gather().empty() || !second.gather().empty()) {
    // fp32 on the decoded factors: z[m, l, k] = Σ_j x[m, k, j]·R[k·b + l, j], y[m, l, o] = Σ_k L[l·C/b + o, k]·z[m, l,
    // k]
    const at::Tensor z =
        torch::einsum("mkj,klj->mlk", {in.reshape({M, b, Kb}), decoded_weight(first).reshape({b, b, Kb})});
    at::Tensor y = torch::einsum("mlk,lok->mlo", {z, decoded_weight(second).reshape({b, Cb, b})}).reshape(shape);
    if (bs.defined()) y = y + bs;
    return clamp.active() ? y.clamp(clamp.lo, clamp.hi) : y;
  }
  // Integer kernels: each row of x quantized once (one range), then input block k's b rows of R read from its
  // K/b codes (the rows' padding is zero weights: what they read past the block adds nothing) ...
  QuantScratch& s = quant_scratch();
  const Isa isa = active_isa();
  const int64_t stride = K + wr->layout.k_pad;
  uint8_t* q = sized(s.codes, M * stride);
  float* const scale = sized(s.scale, M);
  int32_t* const zero = sized(s.zero, M);
  runtime::quantize_rows_dynamic(in.data_ptr<float>(), M, K, K, nullptr, stride, q, scale, zero);
  float* const z = sized(s.mid, 2 * M * b * b);  // z[m, k·b + l], then zt[m, l·b + k]
  for (int64_t k = 0; k < b; ++k)
    runtime::qgemm(rows_of(*wr, k * b, b), {q + k * Kb, M, stride, scale, zero}, nullptr, z + k * b, b * b, isa);
  // ... then output block l's C/b rows of L from z's values of block l, side by side and quantized per row.
  float* const zt = z + M * b * b;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < b; ++k)
      for (int64_t l = 0; l < b; ++l) zt[m * b * b + l * b + k] = z[m * b * b + k * b + l];
  const int64_t stride2 = b * b + wl->layout.k_pad;
  q = sized(s.rows, M * stride2);
  runtime::quantize_rows_dynamic(zt, M, b * b, b * b, nullptr, stride2, q, scale, zero);
  at::Tensor y = runtime::empty_output(shape);
  for (int64_t l = 0; l < b; ++l)
    runtime::qgemm(rows_of(*wl, l * Cb, Cb), {q + l * b, M, stride2, scale, zero},
                   bs.defined() ? bs.data_ptr<float>() + l * Cb : nullptr, y.data_ptr<float>() + l * Cb, C, isa,
                   {nullptr, clamp.lo, clamp.hi});
  return y;
}

at::Tensor packed_conv2d(const LayerView& layer, const at::Tensor& x, const at::Tensor& bias,
                         const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                         const std::vector<int64_t>& dilation, const ActivationQuant* act, bool dynamic,
                         const OutputOps& out, bool contiguous_out, const ValueRange* input_range,
                         ValueRange* output_range) {
  const Shape& shape = layer.layout().shape;  // [Cout, Cin, kh, kw], encoded as [Cout, kh·kw·Cin]
  const runtime::QWeights* w = layer.integer_weights();
  if (!w || !(act || dynamic) || shape.size() != 4)
    throw Error(ErrorKind::kInternal, "packed conv2d: a layer without integer weights");
  const int64_t C = shape[0], Cin = shape[1], kh = shape[2], kw = shape[3];
  if (x.dim() != 4 || x.size(1) != Cin)
    throw Error(ErrorKind::kInvalidArgument,
                "packed conv2d: input " + c10::str(x.sizes()) + " does not have " + std::to_string(Cin) + " channels");
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  const int64_t oh = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
  const int64_t ow = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
  if (oh < 1 || ow < 1)
    throw Error(ErrorKind::kInvalidArgument,
                "packed conv2d: input " + c10::str(x.sizes()) + " is smaller than the kernel");
  const ConvGeometry g{N,  H,         W,         Cin,        kh,         kw,          oh,
                       ow, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]};
  // The input channels last as it lies where it is (another convolution's output): no ATen call, which costs
  // about a microsecond a view (ResNet-18 runs 20 convolutions). An image in planes (a model's input) is read as
  // it lies too, by a convolution that quantizes its whole input first: each plane's row quantized, then the
  // codes interleaved, instead of the floats copied channels last by one thread first. Else copied so.
  const bool as_it_lies = x.scalar_type() == at::kFloat && x.is_contiguous(c10::MemoryFormat::ChannelsLast);
  const bool planes = !as_it_lies && x.scalar_type() == at::kFloat && x.is_contiguous() && !g.pointwise();
  const at::Tensor nhwc =
      as_it_lies || planes ? x : runtime::contiguous_output(x.to(torch::kFloat).permute({0, 2, 3, 1}));
  const ActivationLayout l = activation_layout(layer, g.rows());
  PatchRows patches(nhwc.data_ptr<float>(), planes, g, act, input_range, l, quant_scratch());
  const at::Tensor b = float_bias(bias, C, "conv2d");
  const at::Tensor r = epilogue_residual(out.residual, {N, C, oh, ow}, c10::MemoryFormat::ChannelsLast);
  // [N, C, oh, ow] channels last: the kernels' rows of C outputs per position, with no view made after.
  at::Tensor y = runtime::empty_output({N, C, oh, ow}, at::kFloat, {oh * ow * C, 1, ow * C, C});
  runtime::QGemmOptions options = kernel_epilogue(out, r, C);
  options.panels = l.panels;
  options.source = &patches;
  float range[2] = {0.0f, 0.0f};
  if (output_range) options.range = range;
  runtime::qgemm(*w, {patches.rows(), g.rows(), l.stride, patches.scales(), patches.zeros()},
                 b.defined() ? b.data_ptr<float>() : nullptr, y.data_ptr<float>(), C, active_isa(), options);
  if (output_range) *output_range = {range[0], range[1], !after_kernels(out, r)};
  if (after_kernels(out, r)) y = ops_after(y, out);
  return contiguous_out ? runtime::contiguous_output(y) : y;
}

at::Tensor packed_embedding(const LayerView& layer, const at::Tensor& ids) {
  const int64_t D = layer.reduction();
  const at::Tensor flat = ids.reshape({-1}).to(torch::kLong).contiguous();
  at::Tensor out = runtime::empty_output({flat.numel(), D});
  layer.decode_listed_rows(flat.data_ptr<int64_t>(), flat.numel(), out.data_ptr<float>());
  if (!layer.gather().empty()) out = permute_columns(layer, out, false);
  std::vector<int64_t> shape(ids.sizes().begin(), ids.sizes().end());
  shape.push_back(D);
  return out.reshape(shape);
}

at::Tensor decoded_weight(const LayerView& layer) {
  at::Tensor canonical = torch::empty({layer.channels(), layer.reduction()}, torch::kFloat);
  layer.decode_rows(0, layer.channels(), canonical.data_ptr<float>());
  return layer.layout().from_canonical(canonical);
}

}  // namespace packed
}  // namespace adze
