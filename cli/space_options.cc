#include "cli/space_options.h"

namespace adze::cli {

void add_space_options(CLI::App* sub, SpaceOptions& o) {
  sub->add_option("model", o.model, "TorchScript file, or a reference model name")->required();
  sub->add_option("--data", o.data, "data SPEC (the sensitivity subset comes from --split)")->required();
  sub->add_option("--split", o.split, "split the sensitivity is measured on")->capture_default_str();
  sub->add_option("--limit", o.limit, "samples the sensitivity is measured on")->capture_default_str();
  sub->add_option("--bits", o.bits, "weight bit-widths")->delimiter(',')->capture_default_str();
  sub->add_option("--nm", o.nm, "N:M patterns (none for dense)")->delimiter(',')->capture_default_str();
  sub->add_option("--act-bits", o.act_bits,
                  "activation bit-widths (0: float; each layer's input is measured fake-quantized alone)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--decompose", o.decompose,
                  "block decompositions to offer each layer: none, lowrank:RATIO (rank as a fraction of min(C, K)), "
                  "monarch:BLOCKS, smartdeal:BASIS")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--probes", o.probes, "Hutchinson probes of the Hessian trace (0: none)")->capture_default_str();
  sub->add_option("--seed", o.seed, "seed")->capture_default_str();
  sub->add_option("--input-shape", o.input_shape, "sample input shape (default: the model card)");
  sub->add_option("--input-dtype", o.input_dtype, "float32 or int64");
}

}  // namespace adze::cli
