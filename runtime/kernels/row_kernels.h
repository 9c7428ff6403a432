// The per-ISA building blocks of the integer matmul (qgemm.h), one table of plain functions per instruction
// set. Each ISA's table lives in its own translation unit, compiled with that ISA's flags, and uses nothing but
// intrinsics and plain loops: no inline library templates, whose one shared copy the linker might take from
// the wide-ISA unit and run on a CPU without it.
//
// The formats the functions read (see runtime/kernels/qgemm.h for the whole layout):
// - planes: a row's values as unsigned `bits`-wide numbers in chunks of 64, each chunk split into planes of
//   8, 4, 2 and 1 bits (widest first; 7 bits = 4 + 2 + 1, value = p4 | p2 << 4 | p1 << 6). A plane of w bits is
//   8·w bytes: for w = 4, byte i holds value i (low nibble) and value i + 32 (high nibble); for w = 2, bits
//   [2j, 2j+2) of byte i hold value i + 16j; for w = 1, bit v of the little-endian 64-bit word is value v.
//   In a kPairs chunk the value planes are followed by a 2-bit plane (16 bytes) of each value's position in its
//   group of four: value t of the chunk multiplies activation 4·⌊t/2⌋ + position of the chunk's 128.
// - masks: one bit per dense position, 64 positions per little-endian word; set = kept.
// - pairs activations: what kPairs functions read in place of an activation row: each chunk's 128 bytes in
//   the 16-byte block order 0, 2, 4, 6, 1, 3, 5, 7. Chunk values 8b..8b+7 read block b, and a byte shuffle
//   (pshufb) gathers only within a 16-byte lane; in this order lane l of the first 64 bytes is block 2l and lane
//   l of the second is block 2l + 1, so the values of lane l (16l..16l+15) come from the same lane of the two.
// - gather controls (unpack_pairs): per value t, the index of its activation within block ⌊t/8⌋, which is
//   4·⌊(t mod 8)/2⌋ + position.
// - panels (gemm_panel): kPanelChannels output channels' weights as dense signed bytes (any pattern expanded,
//   zeros included), interleaved for vpdpbusd: per step of 4 reduction positions, channel c's 4 bytes at
//   4·c, so one step is 4·kPanelChannels bytes (two 64-byte vectors of 16 channels); steps in reduction order,
//   64-byte aligned. Channels past the matrix's last row are zero.
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace adze {
namespace runtime {

constexpr int64_t kPanelChannels = 32;  ///< output channels per panel
constexpr int64_t kPanelRows = 8;       ///< activation rows per gemm_panel call (16 accumulators of 16 int32)

/// The float epilogue of a panel tile with one group (one scale per weight row), as qgemm.cc's shared epilogue
/// computes it: y[r][c] = clamp(a_scale[r]·(w_scale[c]·float(dot − a_zero[r]·wsum[c])) + bias[c], lo, hi), each
/// operation rounded in that order (no FMA), NaN kept by the clamp.
struct PanelEpilogue {
  const float* a_scale = nullptr;  ///< [rows] of the tile
  const int32_t* a_zero = nullptr;
  const float* w_scale = nullptr;  ///< [channels] of the panel
  const int32_t* wsum = nullptr;
  const float* bias = nullptr;  ///< or null
  float lo = 0, hi = 0;
  float* y = nullptr;  ///< the tile's first output, rows y_stride apart
  int64_t y_stride = 0;
  int64_t channels = 0;  ///< 1..kPanelChannels: the panel's real channels
};

struct RowKernels {
  /// `chunks` chunks of 64 `bits`-wide values → out[64·chunks] signed bytes, value − offset (mod 256).
  void (*unpack)(const uint8_t* planes, int bits, int64_t chunks, int32_t offset, int8_t* out);
  /// Scatters the kept bytes in order onto the set bits of `words` mask words: dense[64·words], zero elsewhere.
  /// Reads up to 64 bytes past the last kept byte (callers pad).
  void (*expand)(const int8_t* kept, const uint64_t* mask, int64_t words, int8_t* dense);
  /// Σ x[i]·w[i] over n (a multiple of 32) unsigned activations and signed weights. `small`: every |w| ≤ 64,
  /// which lets AVX2's vpmaddubsw add pairs without saturating (255·64·2 < 2^15); otherwise it widens to 16 bits.
  int32_t (*dot)(const uint8_t* x, const int8_t* w, int64_t n, bool small);
  /// Four dot products of one activation row against four weight rows w0..w3 (each n bytes, rows `stride`
  /// apart), into out[4].
  void (*dot4)(const uint8_t* x, const int8_t* w, int64_t stride, int64_t n, bool small, int32_t* out);
  /// The products of `rows` packed rows (row_bytes apart, row r's offset offset[r]) with `x_rows` activation rows
  /// (x_stride apart), unpacked in registers: dots[i·dots_stride + r·groups + g] = Σ (value − offset[r])·x_i
  /// over chunks [g·group_chunks, (g+1)·group_chunks) of row r. Dense (`pairs` false): chunks of 8·bits bytes
  /// against x[64 per chunk]; kPairs: chunks of 8·bits + 16 bytes against x[128 per chunk] in the pairs order.
  /// Where the table's row_dot_rows is above 1, a chunk is unpacked once for up to four activation rows.
  void (*row_dot)(const uint8_t* planes, int64_t row_bytes, int64_t rows, int bits, const int32_t* offset, bool pairs,
                  const uint8_t* x, int64_t x_rows, int64_t x_stride, int64_t group_chunks, int64_t groups, bool small,
                  int32_t* dots, int64_t dots_stride);
  /// `chunks` kPairs chunks → w[64·chunks] signed values (value − offset) and g[64·chunks] gather controls.
  void (*unpack_pairs)(const uint8_t* planes, int bits, int64_t chunks, int32_t offset, int8_t* w, uint8_t* g);
  /// Four products of unpacked kPairs rows (w, g from unpack_pairs; rows `stride` apart, 64·chunks values each)
  /// with one activation row x[128·chunks] in the pairs order, into out[4].
  void (*pairs_dot4)(const uint8_t* x, const int8_t* w, const uint8_t* g, int64_t stride, int64_t chunks, bool small,
                     int32_t* out);
  /// The register-blocked GEMM microkernel: `rows` (1..kPanelRows) activation rows (x_stride apart, dense order)
  /// times one panel of `groups` groups of `group_steps` steps each: dots[(r·groups + g)·kPanelChannels + c] =
  /// Σ over group g of activation row r · channel c. Null where the ISA has none (scalar: the four-row tiles run
  /// instead).
  /// `small`: every weight of the panel is within [−64, 64] (QWeightLayout::small), which AVX2 uses.
  void (*gemm_panel)(const uint8_t* x, int64_t x_stride, int64_t rows, const int8_t* panel, int64_t group_steps,
                     int64_t groups, bool small, int32_t* dots);
  /// gemm_panel of one group (`steps` steps) straight into outputs through the epilogue, the accumulators never
  /// leaving registers; `rows` 1..kPanelRows, each computed once. Null where the ISA has no microkernel.
  void (*gemm_panel_out)(const uint8_t* x, int64_t x_stride, int64_t rows, const int8_t* panel, int64_t steps,
                         bool small, const PanelEpilogue& e);
  /// One activation row (a batch-1 layer) against `blocks` consecutive panels of one group (`steps` steps each),
  /// straight into outputs: gemm_panel_out of each panel in one call, `e` covering all e.channels channels (its
  /// scales, sums, bias and outputs from the first). Null where the ISA has no microkernel.
  void (*gemv_panels_out)(const uint8_t* x, const int8_t* panels, int64_t blocks, int64_t steps,
                          const PanelEpilogue& e);
  /// Widens [*lo, *hi] to the smallest and largest of n floats; NaN is ignored.
  void (*range)(const float* x, int64_t n, float* lo, float* hi);
  /// The activation codes of n floats: q = clamp(zf + round_even(x·inv), 0, 255), NaN → 0, where round_even
  /// rounds to nearest, ties to even, as (v + 1.5·2^23) − 1.5·2^23 does (exactly, wherever the clamp does not
  /// decide). The same bytes on every instruction set.
  void (*quantize)(const float* x, int64_t n, float inv, float zf, uint8_t* q);
  /// m rows of k floats (x_stride apart), each quantized with its own range exactly as range (from [0, 0]),
  /// qgemm.h's range_scale and quantize do it row by row: codes into q (rows q_stride ≥ k apart, the bytes from
  /// k on zero), scale[r], zero[r]. Null where the ISA has none (qgemm.cc then goes row by row).
  void (*quantize_rows)(const float* x, int64_t m, int64_t k, int64_t x_stride, int64_t q_stride, uint8_t* q,
                        float* scale, int32_t* zero);
  /// The same codes, dequantized: y = (q − zf) · scale, without writing q (a fake quantization in one pass).
  void (*fake_quantize)(const float* x, int64_t n, float inv, float zf, float scale, float* y);
  /// The most activation rows for which qgemm takes row_dot over unpacking weight rows into scratch: 1 where
  /// row_dot unpacks per activation row (scalar); 7 on AVX2 and AVX-512, below AVX-512's panels
  /// (qgemm_bench conv_m7_k4608_c512, one thread: AVX-512 211 -> 135 us, AVX2 275 -> 202
  /// us; against 16 rows AVX2's row_dot lost, 117 -> 139-149 us).
  int64_t row_dot_rows;
};

const RowKernels& scalar_row_kernels();
const RowKernels& avx2_row_kernels();
const RowKernels& avx512_row_kernels();
/// The table of an instruction set (which this CPU must run).
const RowKernels& row_kernels(Isa isa);

}  // namespace runtime
}  // namespace adze
