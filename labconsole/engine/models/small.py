"""Small models that train on a laptop CPU: CIFAR-style ResNets (BatchNorm), Paper B's MLPs
and 4-conv CNN. Each exposes ``features(x)`` (penultimate) and a Linear head ``fc``."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Shortcut = Literal["conv", "pad"]


class PadShortcut(nn.Module):
    """He et al.'s option A: subsample by ``stride`` and zero-pad the new channels (no parameters).

    This is the CIFAR ResNet shortcut Paper B counts (ResNet-20: 269,722 parameters)."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.stride = stride
        extra = planes - in_planes
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad[0], self.pad[1]))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: Shortcut = "conv"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = (
                PadShortcut(in_planes, planes, stride)
                if shortcut == "pad"
                else nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            )
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        result: torch.Tensor = self.relu(out + shortcut)
        return result


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images: 3 stages of n BasicBlocks at widths w, 2w, 4w.

    n=1 → ResNet-8 (the embedded default), n=3 → ResNet-20 (Paper B). ``shortcut``: "conv" = 1×1
    projection + BatchNorm where the shape changes (option B), "pad" = option A, as in Paper B."""

    def __init__(
        self,
        blocks_per_stage: int,
        num_classes: int,
        in_channels: int = 3,
        width: int = 16,
        shortcut: Shortcut = "conv",
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=False)
        layers = []
        in_planes = width
        for stage, planes in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for b in range(blocks_per_stage):
                stride = 2 if (stage > 0 and b == 0) else 1
                blocks.append(BasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.fc(self.features(x))
        return logits


class MLP(nn.Module):
    """Paper B's MLPs: flatten → hidden Linear+ReLU layers → Linear head ``fc``."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_classes: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for _i, h in enumerate(hidden):
            layers += [nn.Linear(prev, h), nn.ReLU()]
            prev = h
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(prev, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.fc(self.features(x))
        return logits


class SmallCNN(nn.Module):
    """Paper B's 4-conv CNN (TRADES' ``SmallCNN``): two blocks of (conv3×3-ReLU, conv3×3-ReLU,
    max-pool), no padding, then Linear 200 - ReLU - dropout 0.5 - Linear 200 - ReLU - head ``fc``.

    32/64 channels (``width`` = 32) on 28×28 inputs: 312,202 parameters for 10 classes (Table 2).
    Initialisation as TRADES: Kaiming-normal convolutions with zero bias, a zero head."""

    def __init__(
        self, num_classes: int, in_channels: int = 1, width: int = 32, image_size: int = 28, hidden: int = 200
    ):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3),
            nn.ReLU(),
            nn.Conv2d(width, width, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"small_cnn needs images of at least 14×14 pixels, got {image_size}")
        self.hidden = nn.Sequential(
            nn.Linear(2 * width * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.fc = nn.Linear(hidden, num_classes)
        for m in self.body:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.hidden(self.body(x))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.fc(self.features(x))
        return logits
