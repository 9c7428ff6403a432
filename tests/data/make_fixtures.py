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
  resnet18_w4_traced.pt torchvision's resnet18 architecture (BasicBlock, [2, 2, 2, 2], 7x7 stem, max pool,
                        in-place ReLU and residual +=, adaptive average pool, fc) at base width 4 instead of 64,
                        10 classes; torch.jit.trace on 1x3x32x32. There is no torchvision here: the classes below
                        follow its source.
  mobilenet_v2_traced.pt torchvision's mobilenet_v2 architecture (inverted residuals, depthwise convolutions,
                        in-place ReLU6, dropout) at width_mult 0.1 with last_channel 64 instead of 1280, 10
                        classes; torch.jit.trace on 1x3x32x32
  transformer_traced.pt nn.TransformerEncoder of two nn.TransformerEncoderLayer(d_model=32, nhead=4,
                        dim_feedforward=64, batch_first=True) with a mean over tokens and a linear head (10 classes);
                        torch.jit.trace on 1x16x32, as a user would trace it (batch 1)
  tensors_tokens.pt     64 random 16x32 token sequences with labels 0..9 (a tensors: data file for it)
  ops_traced.pt         every remaining op the ONNX exporter lists (sub, div, gelu, silu, sigmoid, tanh,
                        hardswish, clamp, avg_pool2d, chunk, split, cat, permute, bmm, softmax, slice);
                        torch.jit.trace on 1x4x8x8
"""
import os
from typing import Optional

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class TransformerClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.encoder(x).mean(1))


def make_transformer():
    torch.manual_seed(2)
    net = TransformerClassifier().eval()
    torch.jit.trace(net, torch.randn(1, 16, 32), check_trace=False).save(os.path.join(HERE, "transformer_traced.pt"))
    data = {"inputs": torch.randn(64, 16, 32), "targets": torch.randint(0, 10, (64,))}
    torch.save(data, os.path.join(HERE, "tensors_tokens.pt"))


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


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):  # torchvision.models.resnet.BasicBlock
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):  # torchvision.models.resnet18, base width `width` (torchvision: 64)
    def __init__(self, width=4, num_classes=10):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, 2)
        self.layer2 = self._make_layer(2 * width, 2, stride=2)
        self.layer3 = self._make_layer(4 * width, 2, stride=2)
        self.layer4 = self._make_layer(8 * width, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def make_divisible(v, divisor, min_value=None):  # torchvision.models._utils._make_divisible
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU6(nn.Sequential):  # torchvision.ops.Conv2dNormActivation with ReLU6
    def __init__(self, in_planes, out_planes, kernel_size=3, stride=1, groups=1):
        super().__init__(nn.Conv2d(in_planes, out_planes, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                                   bias=False),
                         nn.BatchNorm2d(out_planes), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):  # torchvision.models.mobilenetv2.InvertedResidual
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [ConvBNReLU6(inp, hidden_dim, kernel_size=1)] if expand_ratio != 1 else []
        layers += [ConvBNReLU6(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
                   nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):  # torchvision.models.mobilenet_v2 (last_channel: torchvision 1280)
    def __init__(self, width_mult=0.1, last_channel=64, num_classes=10):
        super().__init__()
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                   [6, 320, 1, 1]]
        input_channel = make_divisible(32 * width_mult, 8)
        features = [ConvBNReLU6(3, input_channel, stride=2)]
        for t, c, n, s in setting:
            output_channel = make_divisible(c * width_mult, 8)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
                input_channel = output_channel
        features.append(ConvBNReLU6(input_channel, last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last_channel, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class OpZoo(nn.Module):
    """The ops of the ONNX exporter's list that the other fixtures do not use, around two convolutions and a
    linear layer (the compressed layers)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 12, 1)
        self.fc = nn.Linear(12, 6)

    def forward(self, x):
        y = self.conv(x)                                        # [B, 8, 8, 8]
        a, b = torch.chunk(y, 2, dim=1)                         # 4 + 4 channels
        c, d = torch.split(y, [3, 5], dim=1)
        y = torch.cat([torch.sigmoid(a) * torch.tanh(b), nn.functional.hardswish(c), nn.functional.silu(d)], 1)
        y = torch.clamp(y, -0.5, 2.0) - nn.functional.gelu(self.conv2(x)) / 3.0
        y = nn.functional.avg_pool2d(y, 2)                      # [B, 12, 4, 4]
        t = y.flatten(2).permute(0, 2, 1)                       # [B, 16 tokens, 12 features]
        attn = torch.softmax(torch.bmm(t, t.transpose(1, 2)) / 4.0, dim=-1)
        t = torch.bmm(attn, t)[:, 2:10]                         # slice tokens
        return self.fc(t.mean(1))


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

    torch.manual_seed(1)
    for name, net in [("resnet18_w4_traced.pt", ResNet18()), ("mobilenet_v2_traced.pt", MobileNetV2())]:
        randomize_batch_norm(net)
        net.eval()
        torch.jit.trace(net, torch.randn(1, 3, 32, 32)).save(os.path.join(HERE, name))
    zoo = OpZoo().eval()
    torch.jit.trace(zoo, torch.randn(1, 4, 8, 8)).save(os.path.join(HERE, "ops_traced.pt"))
    make_transformer()


if __name__ == "__main__":
    main()
