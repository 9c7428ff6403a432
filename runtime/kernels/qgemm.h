// The runtime's integer matmul: y = dequant(x) · Wᵀ + bias for quantized activations x (unsigned 8-bit, one
// scale and zero point per row) and low-bit weights W [rows, k], dense or sparse (any N:M pattern, any channel
// permutation), with a scale per output channel or per group of consecutive reduction positions.
//
// The weight layout the kernels read (QWeightLayout), per output row:
// - planes: the row's stored weights in reduction order as unsigned `bits`-wide values u, in chunks of 64 split
//   into bit planes (row_kernels.h); the signed weight is u − offset[row]. Which weights, by `pattern`:
//   - kDense: all k_pad positions, the padding decoding to 0.
//   - kMask: the kept weights, padded to a whole chunk; `mask` says where they sit.
//   - kPairs (every group of four positions keeps two, as 2:4 and 1:2 do): two values per group of four, so
//     k_pad / 2, and after each chunk's value planes a 2-bit plane of each value's position within its group
//     (row_kernels.h). A chunk covers 128 positions, so k_pad is a multiple of 128. Where k ends inside a group
//     that keeps fewer than two, unkept positions fill it up, holding u = offset (0). The positions take the
//     mask's place at the same size for 2:4 (2 bits per kept weight, 1 per position).
// - mask (kMask only): k_pad / 64 little-endian words, bit j set where position j is kept. The kernels never
//   look at the N:M structure: any pattern with the same number of kept weights in every row works.
// - scale and wsum: per (row, group), the weight scale and Σ of the group's signed weights (for the activation
//   zero point: Σ (q − z)·w = Σ q·w − z·Σ w).
//
// pack_qweights takes kPairs where the mask allows it, the groups are whole chunks of 128 and every offset is a
// storable code; other masks take kMask. One activation row (batch 1) times kDense or kPairs weights runs a
// weight row at a time, unpacked and multiplied in registers (row_dot): a dense row against the activations,
// a pairs row against the two activations of each group of four it keeps, gathered by byte shuffles, so with
// half the multiplies. On AVX-512 and AVX2 so do two to seven activation rows (a convolution's few output
// positions late in a network, a few tokens) without prebuilt panels for them: each chunk is unpacked once for
// up to four rows (qgemm_bench, conv_m4_k4608_c512 2:4 INT4, one thread: AVX-512 125 -> 75 us, AVX2 144 ->
// 120-128 us, builds before and after). Several
// activation rows (im2col convolutions, a transformer's tokens) on AVX-512 take a register-blocked GEMM: each block of
// 32 output channels is expanded once per call into a dense int8 panel interleaved for vpdpbusd (any pattern, zeros
// included: at these sizes dense VNNI beats gathering), then tiles of 8 activation rows broadcast 4 activation bytes at
// a time against the panel into 16 accumulators, one group at a time (row_kernels.h: gemm_panel). Otherwise (AVX2,
// scalar, or one row of kMask weights or groups that split chunks) four weight rows at a time are unpacked into scratch
// (kMask rows expanded onto the mask: vpexpandb on AVX-512, a pshufb table on AVX2; kPairs rows with their gather
// controls) and multiplied with each activation row. Products use vpdpbusd, or vpmaddubsw where the weights are small
// enough not to saturate it, else 16-bit vpmaddwd. Rows are split over OpenMP threads. Everything is exact in integers;
// the only rounding is the final float scaling (a row's groups summed in four partial sums, in a fixed order), the same
// on every path.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/isa.h"

namespace adze {
namespace runtime {

enum class QPattern { kDense, kMask, kPairs };

struct QWeightLayout {
  int64_t rows = 0;   ///< output channels
  int64_t k = 0;      ///< reduction length
  int64_t k_pad = 0;  ///< k rounded up to a multiple of 64 (kPairs: of 128)
  int bits = 0;       ///< stored width of u, 1..8
  QPattern pattern = QPattern::kDense;
  int64_t kept = 0;      ///< kept weights per row (k when dense)
  int64_t kept_pad = 0;  ///< stored values per row: k_pad (kDense), kept rounded up to 64 (kMask), k_pad / 2 (kPairs)
  int64_t group = 0;     ///< reduction positions per scale: k_pad for one scale per row, else a multiple of 32
  int64_t groups = 0;    ///< scales per row
  bool small = false;    ///< every signed weight lies in [−64, 64]
  /// Bytes of one chunk of 64 values: the value planes and, for kPairs, the position plane.
  int64_t chunk_bytes() const { return 8 * bits + (pattern == QPattern::kPairs ? 16 : 0); }
  int64_t plane_row_bytes() const { return kept_pad / 64 * chunk_bytes(); }
  int64_t mask_row_words() const { return pattern == QPattern::kMask ? k_pad / 64 : 0; }
};

/// A view of packed weights (over a mapped file or a PackedQWeights).
struct QWeights {
  QWeightLayout layout;
  const uint8_t* planes = nullptr;  ///< [rows, plane_row_bytes]
  const uint64_t* mask = nullptr;   ///< [rows, mask_row_words] (kMask only)
  const int32_t* offset = nullptr;  ///< [rows]
  const float* scale = nullptr;     ///< [rows, groups]
  const int32_t* wsum = nullptr;    ///< [rows, groups]
};

struct PackedQWeights {
  QWeightLayout layout;
  std::vector<uint8_t> planes;
  std::vector<uint64_t> mask;
  std::vector<int32_t> offset, wsum;
  std::vector<float> scale;
  QWeights view() const {
    return {layout, planes.data(), mask.empty() ? nullptr : mask.data(), offset.data(), scale.data(), wsum.data()};
  }
};

/// Why a matrix cannot take the integer kernels, or "" when it can: a signed weight outside [−128, 127], rows
/// that keep different numbers of weights, a group size that is not k or a multiple of 32 dividing k.
/// `u` [rows·k] are the stored codes (< 2^bits), `keep` [rows·k] the mask or null (dense), `offset` [rows] the
/// per-row value subtracted from u, `scale` [rows · k/group] (group = k: one per row).
std::string qweights_unsupported(int64_t rows, int64_t k, int bits, const uint8_t* u, const bool* keep,
                                 const int32_t* offset, int64_t group);
/// Packs such a matrix into the layout above (kDense without `keep`, else kPairs where it applies, else kMask);
/// Error(kUnsupported) with qweights_unsupported()'s reason.
PackedQWeights pack_qweights(int64_t rows, int64_t k, int bits, const uint8_t* u, const bool* keep,
                             const int32_t* offset, const float* scale, int64_t group);

/// Quantized activations: rows of `stride` (≥ k_pad) bytes, x ≈ scale[r] · (q − zero[r]).
struct QActivations {
  const uint8_t* q = nullptr;
  int64_t rows = 0, stride = 0;
  const float* scale = nullptr;
  const int32_t* zero = nullptr;
};

/// Dynamic quantization, one asymmetric 8-bit range per row (its min and max, widened to include 0):
/// x [m, k] with rows x_stride apart; `gather` (k entries or null) reads column gather[j] into column j (a
/// channel permutation). Writes q [m, k_pad] (the padding 0), scale [m], zero [m].
void quantize_rows_dynamic(const float* x, int64_t m, int64_t k, int64_t x_stride, const int64_t* gather, int64_t k_pad,
                           uint8_t* q, float* scale, int32_t* zero, Isa isa = active_isa());
/// The scale and zero point quantize_rows_dynamic gives a row of these n values.
void dynamic_params(const float* x, int64_t n, float* scale, int32_t* zero, Isa isa = active_isa());
/// The min and max of n values, widened to include 0, on the calling thread: a piece of a range that
/// range_scale turns into dynamic_params' scale and zero point once the pieces are combined (min of the mins, max
/// of the maxes: the same in any order).
void value_range(const float* x, int64_t n, float* lo, float* hi, Isa isa = active_isa());
void range_scale(float lo, float hi, float* scale, int32_t* zero);
/// Static quantization with a calibrated scale and zero point (codes 0..255), computed exactly as ATen's
/// fake_quantize_per_tensor_affine: q = clamp(z + nearbyint(x · (1/s)), 0, 255) (NaN → 0), with nearbyint's
/// round-half-to-even done by the vectorisable 1.5·2^23 trick (exact wherever the clamp does not decide).
/// Both run on the instruction set's kernels (row_kernels.h: range, quantize), the same bytes on every one.
void quantize_rows_static(const float* x, int64_t m, int64_t k, int64_t x_stride, const int64_t* gather, int64_t k_pad,
                          float s, int32_t z, uint8_t* q, float* scale, int32_t* zero, Isa isa = active_isa());
/// Fake quantization with a calibrated scale and zero point: y = (q − z) · s for the codes q that
/// quantize_rows_static makes of x (n values), in one pass; y may be x.
void fake_quantize_static(const float* x, int64_t n, float s, int32_t z, float* y, Isa isa = active_isa());

/// A matrix's weights expanded once for the GEMM microkernel (row_kernels.h, panels): one signed byte per weight
/// (any pattern expanded, zeros included), so a layer that sees many activation rows (a convolution's output
/// positions, a transformer's tokens) pays the expansion at its first call instead of at every call, as ONNX
/// Runtime pre-packs weights when a session is made. It costs memory: one byte per weight on top of the packed
/// planes. Empty on an instruction set without a microkernel.
///
/// The panels hold k() reduction positions: a single group's k rounded up to 4 (not to the planes' 64 or 128, so
/// a 2:4 layer of 16 inputs multiplies 16 positions, not 128), so activation rows need only k() bytes. With
/// `order` (the layer's channel permutation: encoded column j is the layer's column order[j]) and one scale per
/// row, the panels are built in the layer's own column order: the activations then need no gather
/// (in_layer_order()), and a 1x1 convolution's quantized input is its activation matrix as it lies.
class QPanels {
 public:
  QPanels() = default;
  QPanels(const QWeights& w, Isa isa, const int64_t* order = nullptr);
  QPanels(QPanels&&) = default;  // the buffer, and so its alignment, moves along
  QPanels& operator=(QPanels&&) = default;
  QPanels(const QPanels&) = delete;
  QPanels& operator=(const QPanels&) = delete;
  bool empty() const { return !storage_; }
  const uint8_t* data() const { return storage_.get(); }
  int64_t bytes() const { return bytes_; }
  Isa isa() const { return isa_; }
  int64_t k() const { return k_; }
  bool in_layer_order() const { return in_order_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> storage_;  // 64-byte aligned; 2 MiB aligned and in huge pages where large
  Isa isa_ = Isa::kScalar;
  int64_t k_ = 0, bytes_ = 0;
  bool in_order_ = false;
};

/// Activation rows from which qgemm runs the microkernel on prebuilt panels. Panels hold a byte per weight, two
/// to four times the packed planes, and a model's layers are read cold from memory: with fewer rows the packed
/// planes' smaller read wins (ResNet-18 at 64x64, layer4's 4-row 3x3 convolutions: 2.4 MB of panels each, 1.32
/// -> 1.62 ms for the model on panels). Panels of at most kSmallPanelBytes (a core's L2 holds them) pay from
/// kSmallPanelMinRows rows (MobileNet-V2's last 1x1 convolutions, 4 positions, 1280 x 320: 0.95 -> 0.80 ms).
/// Panels that read no more bytes than the planes (8-bit dense weights with one scale per row: a byte per weight
/// either way) pay from one row, as nothing is left to unpack (decompose_bench, a batch-1 1024 x 1024 INT8 layer:
/// 19.7 -> 13.9 us; its rank-128 factors 7.3 -> 5.1 us; builds before and after, not one run).
/// Split over a team of threads (by panels: few rows make one tile), each thread reads only its share of the
/// panels, and panels pay from kSmallPanelMinRows rows where that share is at most kSharedPanelShareBytes
/// (ResNet-18 at 64x64, 2:4 + INT4, layer4's 4-row 3x3 convolutions, 2.4 MB of panels: 33 -> 25 us each at two
/// threads; at one thread, planes 49-51 us, panels 53-57 us; per-op profile, builds alternated three times).
constexpr int64_t kPrepackedPanelMinRows = 8;
constexpr int64_t kSmallPanelMinRows = 4;
constexpr int64_t kSmallPanelBytes = int64_t{512} << 10;
constexpr int64_t kSharedPanelShareBytes = int64_t{2} << 20;

/// The bytes of a matrix's prebuilt panels (QPanels::bytes(), less alignment), and whether qgemm runs `rows`
/// activation rows on the prebuilt panels of a matrix of this layout, on the team a product started here runs
/// on (team_threads()).
int64_t prebuilt_panel_bytes(const QWeightLayout& l);
bool panel_rows(int64_t rows, const QWeightLayout& l);

/// Activation rows that qgemm makes itself, inside the parallel body of its product (a convolution's patches):
/// quantizing the input, gathering the patches and multiplying then share one body instead of three, and
/// where the threads split the activation rows, each makes the rows it reads, so they never cross between the
/// cores' caches. qgemm calls prepare() on every thread of the body (its loops shared with work_for, whose
/// closing barriers make what it wrote visible to all: runtime/parallel.h), then make(m0, m1) exactly once for
/// every row, before any thread reads that row: the rows' codes, scales and zero points of the QActivations it
/// was given. Neither uses `omp for`, nor expects a parallel loop of its own to split: inside a body, each
/// thread would run all of it.
class QRowSource {
 public:
  virtual ~QRowSource() = default;
  /// Whether making the rows is worth a parallel region even where the product alone is not.
  virtual bool parallel() const = 0;
  virtual void prepare() {}
  virtual void make(int64_t m0, int64_t m1) = 0;
  /// Whether make_private may be called instead of prepare() and make(), where every thread of the product reads
  /// every row (the threads split the weights): each then makes all the rows for itself, with no barrier between
  /// making and multiplying and no rows crossing between the cores' caches.
  virtual bool makes_private() const { return false; }
  /// Every row, on the calling thread alone, into q (rows of the QActivations' stride), scale and zero: the same
  /// bytes as prepare() and make() give, writing nothing that another thread reads or writes.
  virtual void make_private(uint8_t* q, float* scale, int32_t* zero) { (void)q, (void)scale, (void)zero; }
  /// Whether make_band may be called instead of prepare() and make(), where each thread reads only rows it made
  /// (the threads split the activation rows): each then makes its band from the input alone, with no barrier
  /// before it multiplies.
  virtual bool makes_band() const { return false; }
  /// Rows m0..m1 on the calling thread alone, into q (row m at q + (m - m0) * the QActivations' stride), scale
  /// and zero (row m at m - m0): the same bytes as prepare() and make() give, reading nothing another thread
  /// writes (anything else it needs, such as the quantized input those rows read, goes to this thread's own
  /// scratch).
  virtual void make_band(int64_t m0, int64_t m1, uint8_t* q, float* scale, int32_t* zero) {
    (void)m0, (void)m1, (void)q, (void)scale, (void)zero;
  }
};

/// What qgemm may use and do besides the product.
struct QGemmOptions {
  /// The matrix's panels for this instruction set (QPanels of the same QWeights): where uses_panels() says so,
  /// the microkernel runs on them. Without them it builds panels per call, from kPanelMinRows rows on.
  const QPanels* panels = nullptr;
  /// Every output clamped to [lo, hi] (a fused ReLU or ReLU6; NaN stays NaN, as in ATen).
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  /// Where the activation rows come from: made by this source inside qgemm (QRowSource), or (null) ready.
  QRowSource* source = nullptr;
  /// A fused residual add: residual [a.rows, rows] (rows residual_stride apart) added to the outputs before the
  /// clamp, y = clamp(fq(product + bias) + residual), as the unfused ops would round it; fq is the calibrated
  /// fake quantization of fake_quantize_static with this scale and zero point where the scale is not 0 (a W8A8
  /// model's, on each branch before the add), else nothing.
  const float* residual = nullptr;
  int64_t residual_stride = 0;
  float residual_quant_scale = 0;
  int32_t residual_quant_zero = 0;
  /// Where the scale is not 0: every output fake-quantized after all else, as fake_quantize_static does, while
  /// it is in cache on the thread that computed it (a W8A8 model's quantization of a layer's output).
  float quant_scale = 0;
  int32_t quant_zero = 0;
  /// Where not null: range[0] and range[1] widened to take in every output qgemm writes, after all output ops
  /// (NaN never taken), as value_range takes a tensor's: the range a dynamically quantized next layer needs, taken
  /// on each thread from the outputs it wrote while they are in its cache. Min and max are exact, so the result is
  /// the same on any number of threads.
  float* range = nullptr;
};

/// Whether qgemm runs `rows` activation rows on these panels (panel_rows; then the activations are read as the
/// panels hold them: k() bytes per row, in the layer's order where in_layer_order()).
bool uses_panels(int64_t rows, const QWeightLayout& l, const QPanels* panels);

/// y [a.rows, rows] (rows y_stride apart) = Σ_g scale·a.scale·(Σ q·w − zero·wsum) + bias (bias may be null),
/// on the given instruction set (active_isa() in production; the tests pass each runnable one).
void qgemm(const QWeights& w, const QActivations& a, const float* bias, float* y, int64_t y_stride, Isa isa,
           const QGemmOptions& options = {});

}  // namespace runtime
}  // namespace adze
