#!/usr/bin/python3
"""Where the packed runtime's dynamic activation quantization loses fidelity, layer by layer, in fp32 PyTorch.

    dynamic_error_shares.py MODEL.pt DATA.pt [--limit N] [--top K]

MODEL.pt is a torchvision mobilenet_v2 or resnet18 with 10 classes as scripts/speed_models.py makes it (its
weights are loaded into torchvision's eager model, so that every convolution's input can be hooked); DATA.pt a
tensors: data file ({"inputs": ..., "targets": ...}), of which the last N inputs are used (default 256).

The weights stay fp32: the script isolates the error of quantizing activations on the fly, as the runtime does
for weight-only plans (`--activations dynamic`), with the runtime's rules (runtime/packed_ops.cc, PatchRows):
- a linear layer, and a 1x1 convolution of stride 1: one asymmetric range per row (a token, an output position);
- any other convolution: one range for its whole input tensor;
- a depthwise convolution: fp32 (the runtime runs it in fp32);
each range widened to include 0, codes 0..255 (or 0..65535 for the 16-bit rows below).

Prints, against the fp32 model's outputs: the argmax agreement and output SQNR with every layer quantized; then
each layer's share of the output error when it alone is quantized (its squared error over the sum of all
layers' alone); then the agreement and SQNR with the 1, 2, 3, 6 and K (--top, default 12) largest shares kept at
16 bits and the rest at 8.
Needs Debian's python3-torch and python3-torchvision. A run takes a few minutes on 2 cores.
"""
import argparse
import sys

import torch
import torch.nn as nn
import torchvision


def quantize_rows(v, bits):
    """v's last dimension quantized per row, asymmetric, the range widened to include 0, then dequantized."""
    lo = v.amin(-1, keepdim=True).clamp(max=0)
    hi = v.amax(-1, keepdim=True).clamp(min=0)
    levels = 2**bits - 1
    scale = ((hi - lo) / levels).clamp_min(1e-30)
    zero = (-lo / scale).round()
    return ((v / scale).round() + zero).clamp(0, levels).sub(zero) * scale


def dynamic_input(module, v, bits):
    """The input the runtime's integer kernels see for `module`, or None where it reads fp32."""
    if isinstance(module, nn.Linear):
        return quantize_rows(v, bits)
    if module.groups > 1:
        return None
    if module.kernel_size == (1, 1) and module.stride == (1, 1):
        return quantize_rows(v.permute(0, 2, 3, 1), bits).permute(0, 3, 1, 2)
    # One range per input tensor: the runtime runs batch 1, so one per sample here.
    return quantize_rows(v.reshape(v.shape[0], -1), bits).reshape(v.shape)


def fail(message):
    """One line on stderr and exit code 2, as adze answers bad input."""
    print(f"dynamic_error_shares.py: {message}", file=sys.stderr)
    sys.exit(2)


def make_hook(name, bits_of):
    """A forward pre-hook that quantizes the layer's input as bits_of says (name, else "*"; 0 or absent: fp32)."""
    def hook(module, inputs):
        bits = bits_of.get(name, bits_of.get("*", 0))
        q = dynamic_input(module, inputs[0], bits) if bits else None
        return None if q is None else (q,)
    return hook


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--limit", type=int, default=256, help="the last N inputs of DATA.pt (at least 1)")
    parser.add_argument("--top", type=int, default=12, help="layers listed, and the most kept at 16 bits (at least 1)")
    args = parser.parse_args()
    if args.limit < 1 or args.top < 1:
        fail(f"--limit {args.limit} --top {args.top}: each must be at least 1")
    torch.set_num_threads(2)

    try:
        traced = torch.jit.load(args.model)
        names = {n for n, _ in traced.named_modules()}
        model = (torchvision.models.mobilenet_v2(num_classes=10)
                 if "features.0.0" in names else torchvision.models.resnet18(num_classes=10))
        model.load_state_dict(traced.state_dict())
    except Exception as e:  # torch raises RuntimeError, pickle and OS errors alike here
        fail(f"{args.model}: not a 10-class torchvision mobilenet_v2 or resnet18 ({str(e).splitlines()[0]})")
    model.eval()
    try:
        x = torch.load(args.data)["inputs"][-args.limit:]
    except Exception as e:
        fail(f"{args.data}: not a tensors: data file with 'inputs' ({str(e).splitlines()[0]})")

    bits_of = {}  # layer -> activation bits (0: fp32); "*" the default
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            layers.append(name)
            module.register_forward_pre_hook(make_hook(name, bits_of))

    def run():
        with torch.no_grad():
            return model(x)

    bits_of.clear()
    reference = run()

    def report(what):
        y = run()
        agreement = (y.argmax(1) == reference.argmax(1)).float().mean().item()
        sqnr = 10 * torch.log10((reference**2).sum() / ((y - reference)**2).sum()).item()
        print(f"{what:44s} agreement {100 * agreement:6.2f}%   output SQNR {sqnr:5.1f} dB", flush=True)

    print(f"{args.model}: {len(layers)} layers, {x.shape[0]} inputs")
    bits_of["*"] = 8
    report("every layer 8-bit dynamic")
    bits_of["*"] = 16
    report("every layer 16-bit dynamic")

    errors = []
    for name in layers:
        bits_of.clear()
        bits_of[name] = 8
        errors.append((((run() - reference)**2).sum().item(), name))
    errors.sort(reverse=True)
    total = sum(e for e, _ in errors)
    print("share of the output error, each layer quantized alone:")
    for e, name in errors[:args.top]:
        print(f"  {name:30s} {100 * e / total:5.1f}%")
    for k in sorted({1, 2, 3, 6, args.top}):
        bits_of.clear()
        bits_of["*"] = 8
        for _, name in errors[:k]:
            bits_of[name] = 16
        report(f"the {k} largest shares at 16 bits, the rest 8")


if __name__ == "__main__":
    main()
