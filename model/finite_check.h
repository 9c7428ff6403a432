// Refuses models whose own tensors hold NaN or infinity, at load time.
//
// A non-finite weight is bad input (a diverged training run, a corrupted checkpoint), not an adze bug: left
// alone it surfaces much later as an internal failure of whichever pass first computes with it (fold-bn's
// scale, a quantizer's range). Checking once when the model is loaded names the file and the tensor instead.
#pragma once

namespace adze {

class Model;

/// Throws Error(kInvalidArgument) naming the model's source and its first floating-point parameter that holds
/// NaN or ±inf, or buffer that holds NaN (with how many of its values, and how many other tensors are affected).
/// Buffers may hold ±inf on purpose (an additive attention mask), parameters may not.
void require_finite_tensors(const Model& model);

}  // namespace adze
