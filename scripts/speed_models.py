#!/usr/bin/python3
"""Makes the models of scripts/speed.sh that adze does not train itself, and the ONNX Runtime baselines.

    speed_models.py OUT_DIR [REFERENCE.pt ...]

Data: Fashion-MNIST from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), each 28x28 image
resized to 64x64 (bilinear), its grey channel repeated 3 times, normalized ((x/255 - 0.2860) / 0.3530).

Writes into OUT_DIR:
  resnet18.pt, mobilenet_v2.pt   torchvision's resnet18 and mobilenet_v2 with 10 classes (weights=None, nothing
                                 downloaded), each trained from seed 0 for 200 steps of batch 64 (one pass over the
                                 first 12800 training images; Adam, rate 1e-3 decayed on a cosine; 2 threads), then
                                 put in eval mode and traced by torch.jit.trace on 1x3x64x64; with a card
                                 (NAME.json: the input) beside each, as adze expects. Each one's training time and
                                 its accuracy on the images of calib64.pt go to stderr (88.0% and 79.6%)
  calib64.pt                     the first 2560 Fashion-MNIST test (t10k) images, preprocessed as above, with their
                                 labels: {"inputs": [2560,3,64,64] float32, "targets": [2560] int64}, a tensors:
                                 data file (adze splits it 80/10/10, so its test split has 256 images)
  NAME.onnx                      PyTorch's own fp32 ONNX export (opset 17) of each of the models above and of
                                 every REFERENCE.pt given (adze's trained reference models), batch 1: what ONNX
                                 Runtime runs as the uncompressed baseline
Takes about 4 minutes on 2 cores, nearly all of it training. Needs Debian's python3-torch, python3-torchvision,
python3-onnx and dataset-fashion-mnist.
"""
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530
BATCH = 64
CALIB = 2560
STEPS = 200  # training steps per model, each on a batch of 64 new training images


def read_idx(name):
    """The array in Fashion-MNIST's gzipped IDX file NAME (uint8 images [n,28,28] or labels [n])."""
    with gzip.open(os.path.join(FASHION_MNIST, name), "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def preprocess(images):
    """uint8 [n,28,28] -> float32 [n,3,64,64]: resized, grey repeated 3 times, normalized."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)).unsqueeze(1)
    x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    return ((x / 255 - MEAN) / STD).repeat(1, 3, 1, 1).contiguous()


def train(model, images, labels, steps):
    """One pass over the first steps * BATCH of images/labels in train mode (channels-last: faster on CPU);
    returns the model in eval mode, its parameters back in the default layout."""
    model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    for step in range(steps):
        x = preprocess(images[step * BATCH:(step + 1) * BATCH]).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(labels[step * BATCH:(step + 1) * BATCH].astype(np.int64))
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        schedule.step()
    return model.to(memory_format=torch.contiguous_format).eval()


def accuracy(model, inputs, targets):
    with torch.no_grad():
        hits = sum((model(inputs[i:i + 256]).argmax(1) == targets[i:i + 256]).sum().item()
                   for i in range(0, len(inputs), 256))
    return hits / len(inputs)


def export_onnx(module, example, path):
    torch.onnx.export(module, (example,), path, input_names=["input"], output_names=["output"], opset_version=17)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    train_images = read_idx("train-images-idx3-ubyte.gz")
    train_labels = read_idx("train-labels-idx1-ubyte.gz")
    calib = {"inputs": preprocess(read_idx("t10k-images-idx3-ubyte.gz")[:CALIB]),
             "targets": torch.from_numpy(read_idx("t10k-labels-idx1-ubyte.gz")[:CALIB].astype(np.int64))}
    torch.save(calib, os.path.join(out, "calib64.pt"))
    example = calib["inputs"][:1].clone()
    for name, make in (("resnet18", torchvision.models.resnet18), ("mobilenet_v2", torchvision.models.mobilenet_v2)):
        torch.manual_seed(0)
        start, cpu = time.time(), time.process_time()
        model = train(make(weights=None, num_classes=10), train_images, train_labels, STEPS)
        seconds, cpu = time.time() - start, time.process_time() - cpu
        acc = accuracy(model, calib["inputs"], calib["targets"])
        print(f"{name}: trained {STEPS} steps ({STEPS * BATCH} images) in {seconds:.0f} s ({cpu:.0f} s of CPU); "
              f"test accuracy {100 * acc:.1f}% ({CALIB} images)", file=sys.stderr, flush=True)
        traced = torch.jit.trace(model, example)
        traced.save(os.path.join(out, name + ".pt"))
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump({"input": {"shape": [1, 3, 64, 64], "dtype": "float32"}}, f)
        export_onnx(model, example, os.path.join(out, name + ".onnx"))
    torch.manual_seed(0)
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
