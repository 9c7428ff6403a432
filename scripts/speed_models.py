#!/usr/bin/python3
"""Makes the models of scripts/speed.sh that adze does not train itself, and the ONNX Runtime baselines.

    speed_models.py OUT_DIR [REFERENCE.pt ...]

Writes into OUT_DIR:
  resnet18.pt, mobilenet_v2.pt   torchvision's resnet18 and mobilenet_v2 (weights=None: initialised from seed 0,
                                 nothing downloaded), traced by torch.jit.trace on 1x3x64x64, in eval mode;
                                 with a card (NAME.json: the input) beside each, as adze expects
  calib64.pt                     512 standard-normal 3x64x64 samples with random labels (a tensors: data file for
                                 calibrating activations; the speed does not depend on what the weights learned)
  NAME.onnx                      PyTorch's own fp32 ONNX export (opset 17) of each of the models above and of
                                 every REFERENCE.pt given (adze's trained reference models), batch 1: what ONNX
                                 Runtime runs as the uncompressed baseline
Needs Debian's python3-torch, python3-torchvision and python3-onnx.
"""
import json
import os
import sys

import torch
import torchvision


def export_onnx(module, example, path):
    torch.onnx.export(module, (example,), path, input_names=["input"], output_names=["output"], opset_version=17)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    example = torch.randn(1, 3, 64, 64)
    for name, make in (("resnet18", torchvision.models.resnet18), ("mobilenet_v2", torchvision.models.mobilenet_v2)):
        model = make(weights=None, num_classes=1000).eval()
        traced = torch.jit.trace(model, example)
        traced.save(os.path.join(out, name + ".pt"))
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump({"input": {"shape": [1, 3, 64, 64], "dtype": "float32"}}, f)
        export_onnx(model, example, os.path.join(out, name + ".onnx"))
    torch.save({"inputs": torch.randn(512, 3, 64, 64), "targets": torch.randint(0, 1000, (512,))},
               os.path.join(out, "calib64.pt"))
    for path in sys.argv[2:]:
        module = torch.jit.load(path).eval()
        with open(os.path.splitext(path)[0] + ".json") as f:
            card = json.load(f)
        spec = card["input"]
        shape = [1] + spec["shape"][1:]
        x = torch.zeros(shape, dtype=torch.int64) if spec["dtype"] == "int64" else torch.randn(shape)
        export_onnx(module, x, os.path.join(out, os.path.splitext(os.path.basename(path))[0] + ".onnx"))


if __name__ == "__main__":
    main()
