#!/usr/bin/python3
"""Makes the TorchScript fixtures under tests/data with Python's torch.jit.trace and torch.jit.script.

These are inputs adze did not write. Run with Debian's python3-torch (1.13): /usr/bin/python3 make_fixtures.py
The tests only read the committed .pt files; they never need Python.

Fixtures (all small, fixed seed):
  cnn_bn_traced.pt      conv+BN+ReLU, depthwise conv+BN+ReLU, avg-pool, linear; torch.jit.trace on 1x3x16x16
  cnn_bn_scripted.pt    the same network with a bool and an Optional[Tensor]=None attribute and an `if`,
                        torch.jit.script
  encoder_traced.pt     nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True),
                        torch.jit.trace on 2x5x16
  encoder_scripted.pt   the same layer, torch.jit.script
  expected.pt           a dict of sample inputs and the outputs Python computed for them (torch.save)
"""
import os
from typing import Optional

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class SmallCnn(nn.Module):
    use_pool: bool
    extra: Optional[torch.Tensor]

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU())
        self.classifier = nn.Linear(8, 5)
        self.use_pool = True
        self.extra = None

    def forward(self, x):
        x = self.features(x)
        if self.use_pool:
            x = torch.nn.functional.adaptive_avg_pool2d(x, 1)
        extra = self.extra
        if extra is not None:
            x = x + extra
        return self.classifier(torch.flatten(x, 1))


def randomize_batch_norm(module):
    """Non-trivial running statistics, so that folding BatchNorm is really tested."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)


def main():
    torch.manual_seed(0)
    cnn = SmallCnn()
    randomize_batch_norm(cnn)
    cnn.eval()
    image = torch.randn(1, 3, 16, 16)
    images = torch.randn(4, 3, 16, 16)
    torch.jit.trace(cnn, image).save(os.path.join(HERE, "cnn_bn_traced.pt"))
    torch.jit.script(cnn).save(os.path.join(HERE, "cnn_bn_scripted.pt"))

    encoder = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True)
    encoder.eval()
    tokens = torch.randn(2, 5, 16)
    torch.jit.trace(encoder, tokens, check_trace=False).save(os.path.join(HERE, "encoder_traced.pt"))
    torch.jit.script(encoder).save(os.path.join(HERE, "encoder_scripted.pt"))

    with torch.no_grad():
        expected = {"images": images, "cnn_out": cnn(images), "tokens": tokens, "encoder_out": encoder(tokens)}
    torch.save(expected, os.path.join(HERE, "expected.pt"))

    # A generic tensor data file: 50 random 3x16x16 images with labels 0..4.
    data = {"inputs": torch.randn(50, 3, 16, 16), "targets": torch.randint(0, 5, (50,))}
    torch.save(data, os.path.join(HERE, "tensors_small.pt"))


if __name__ == "__main__":
    main()
