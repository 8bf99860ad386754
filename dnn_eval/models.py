"""The bundled architectures (plain PyTorch, no torchvision).

Trained by ``dnn_eval.train`` (weights in ``dnn_eval/weights/``; ``TRAINED_ON``
says which on which data set, ``weights_file`` which file an input shape
reads: ``NAME.pt`` for digits (1, 8, 8), ``NAME_mnist5k.pt`` for mnist5k
(1, 28, 28)):

* ``mlp``: Flatten -> Linear(C*H*W, 64) -> ReLU -> Linear(64, 10).
* ``lenet``: LeNet-style, 2 conv + 2 FC (the paper's Table I LeNet):
  conv3x3(C, 6) -> ReLU -> maxpool2 -> conv3x3(6, 16) -> ReLU -> maxpool2 ->
  FC(.., 32) -> ReLU -> FC(32, 10).
* ``convnet``: 3 conv + 2 FC (the paper's Table I ConvNet):
  conv3x3(C, 16) -> ReLU -> conv3x3(16, 32) -> ReLU -> maxpool2 ->
  conv3x3(32, 64) -> ReLU -> maxpool2 -> FC(.., 64) -> ReLU -> FC(64, 10).
* ``vgg``: VGG-style (Simonyan and Zisserman, 2015), 6 conv + 2 FC, the
  deeper network of "deeper degrades more": three blocks of two
  conv3x3 -> ReLU with 16, 32, 64 channels, each block followed by
  maxpool2, then FC(.., 64) -> ReLU -> FC(64, 10).

Random-weight shapes for speed and scale runs:

* ``resnet18``, ``resnet50``: the ImageNet ResNets of He et al. (2016)
  (7x7/2 stem, max-pool, [2,2,2,2] basic or [3,4,6,3] bottleneck blocks,
  global average pool, FC), for any input size >= 32x32; BatchNorm in
  eval mode with its default running statistics.
"""

from __future__ import annotations

import torch
from torch import nn

TRAINED = ("mlp", "lenet", "convnet", "vgg")
# data set -> the networks trained on it, and the input shape its weights take
TRAINED_ON = {"digits": ("mlp", "lenet", "convnet", "vgg"), "mnist5k": ("lenet", "vgg")}
TRAINED_SHAPE = {"digits": (1, 8, 8), "mnist5k": (1, 28, 28)}
SHAPES = ("resnet18", "resnet50")
MODELS = TRAINED + SHAPES


def _flat(features: nn.Module, in_shape) -> int:
    with torch.no_grad():
        return int(features(torch.zeros((1,) + tuple(in_shape))).numel())


class MLP(nn.Module):
    def __init__(self, in_shape=(1, 8, 8), num_classes: int = 10, hidden: int = 64) -> None:
        super().__init__()
        c, h, w = in_shape
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.net(x)


class LeNet(nn.Module):
    def __init__(self, in_shape=(1, 8, 8), num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_shape[0], 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(_flat(self.features, in_shape), 32), nn.ReLU(), nn.Linear(32, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class ConvNet(nn.Module):
    def __init__(self, in_shape=(1, 8, 8), num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_shape[0], 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(_flat(self.features, in_shape), 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class VGG(nn.Module):
    def __init__(self, in_shape=(1, 8, 8), num_classes: int = 10, widths=(16, 32, 64)) -> None:
        super().__init__()
        layers, cin = [], in_shape[0]
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
                       nn.MaxPool2d(2)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(_flat(self.features, in_shape), 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def weights_file(name: str, in_shape) -> str:
    """The file in ``dnn_eval/weights/`` of bundled network ``name`` for inputs (C, H, W) = ``in_shape``.

    ``NAME_<dataset>.pt`` when a bundled data set other than digits has that
    shape and trained ``name``; otherwise the digits weights ``NAME.pt``
    (which then fail to load with the architecture and shape named).
    """
    for dataset, shape in TRAINED_SHAPE.items():
        if dataset != "digits" and tuple(in_shape) == shape and name in TRAINED_ON[dataset]:
            return f"{name}_{dataset}.pt"
    return f"{name}.pt"


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.down = None
        if stride != 1 or cin != planes:
            self.down = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.down is None else self.down(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.down = None
        if stride != 1 or cin != out:
            self.down = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    def __init__(self, block, layers, in_shape=(3, 32, 32), num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_shape[0], 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], 64
        for k, n in enumerate(layers):
            planes = 64 * 2**k
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (j == 0 and k > 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def build_model(name: str, in_shape=(1, 8, 8), num_classes: int = 10, seed: int = 0) -> nn.Module:
    """A bundled architecture by name, with seeded initial weights, in eval mode."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {name!r}")
    torch.manual_seed(seed)
    if name == "mlp":
        m = MLP(in_shape, num_classes)
    elif name == "lenet":
        m = LeNet(in_shape, num_classes)
    elif name == "convnet":
        m = ConvNet(in_shape, num_classes)
    elif name == "vgg":
        m = VGG(in_shape, num_classes)
    elif name == "resnet18":
        m = ResNet(BasicBlock, [2, 2, 2, 2], in_shape, num_classes)
    else:
        m = ResNet(Bottleneck, [3, 4, 6, 3], in_shape, num_classes)
    return m.eval()
