"""The reference's PyTorch models (their state_dict names are adarat's checkpoint names) and a
small safetensors reader and writer, for the tests that check adarat against PyTorch."""
import json
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

KINDS = {"F32": torch.float32, "I64": torch.int64}


def read_safetensors(path):
    raw = open(path, "rb").read()
    length = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        flat = torch.frombuffer(bytearray(data[start:end]), dtype=KINDS[entry["dtype"]])
        tensors[name] = flat.reshape(entry["shape"]).clone()
    return tensors


def write_safetensors(path, tensors):
    names = {dtype: name for name, dtype in KINDS.items()}
    header, blobs, offset = {}, [], 0
    for name, tensor in tensors.items():
        blob = tensor.detach().cpu().contiguous().numpy().tobytes()
        header[name] = {"dtype": names[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))

class PreAct(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False))
    def forward(self, x):
        a = F.relu(self.bn1(x))
        skip = self.shortcut(a) if hasattr(self, "shortcut") else x
        return self.conv2(F.relu(self.bn2(self.conv1(a)))) + skip

class ResNetLike(nn.Module):
    def __init__(self, block, cin, classes, stem_bn):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, 64, 3, 1, 1, bias=False)
        if stem_bn:
            self.bn1 = nn.BatchNorm2d(64)
        width = 64
        for stage, out in enumerate([64, 128, 256, 512]):
            blocks = []
            for index in range(2):
                blocks.append(block(width, out, 2 if stage > 0 and index == 0 else 1))
                width = out
            setattr(self, "layer%d" % (stage + 1), nn.Sequential(*blocks))
        self.linear = nn.Linear(512, classes)
    def forward(self, x):
        y = self.conv1(x)
        if hasattr(self, "bn1"):
            y = F.relu(self.bn1(y))
        for stage in range(1, 5):
            y = getattr(self, "layer%d" % stage)(y)
        return self.linear(F.avg_pool2d(y, y.shape[-1]).flatten(1))

class Wide(nn.Module):
    def __init__(self, cin, cout, stride, p):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.p = p
        self.convShortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if cin != cout else None
    def forward(self, x):
        a = F.relu(self.bn1(x))
        y = F.dropout(F.relu(self.bn2(self.conv1(a))), self.p, self.training)
        y = self.conv2(y)
        return (x if self.convShortcut is None else self.convShortcut(a)) + y

class Group(nn.Module):
    def __init__(self, cin, cout, stride, p):
        super().__init__()
        self.layer = nn.Sequential(*[Wide(cin if i == 0 else cout, cout, stride if i == 0 else 1, p) for i in range(5)])
    def forward(self, x):
        return self.layer(x)

class WRN(nn.Module):
    def __init__(self, cin, classes, p):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, 16, 3, 1, 1, bias=False)
        self.block1 = Group(16, 160, 1, p)
        self.block2 = Group(160, 320, 2, p)
        self.block3 = Group(320, 640, 2, p)
        self.bn1 = nn.BatchNorm2d(640)
        self.fc = nn.Linear(640, classes)
    def forward(self, x):
        y = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(F.avg_pool2d(F.relu(self.bn1(y)), y.shape[-1]).flatten(1))

class SmallCNN(nn.Module):
    def __init__(self, cin, side, classes, p):
        super().__init__()
        final = ((side - 4) // 2 - 4) // 2
        self.feature_extractor = nn.Sequential()
        for name, a, b in [("conv1", cin, 32), ("conv2", 32, 32), ("conv3", 32, 64), ("conv4", 64, 64)]:
            self.feature_extractor.add_module(name, nn.Conv2d(a, b, 3))
            self.feature_extractor.add_module("relu" + name[-1], nn.ReLU())
            if name in ("conv2", "conv4"):
                self.feature_extractor.add_module("pool" + name[-1], nn.MaxPool2d(2, 2))
        self.classifier = nn.Sequential()
        self.classifier.add_module("fc1", nn.Linear(64 * final * final, 200))
        self.classifier.add_module("relu1", nn.ReLU())
        self.classifier.add_module("drop", nn.Dropout(p))
        self.classifier.add_module("fc2", nn.Linear(200, 200))
        self.classifier.add_module("relu2", nn.ReLU())
        self.classifier.add_module("fc3", nn.Linear(200, classes))
    def forward(self, x):
        return self.classifier(self.feature_extractor(x).flatten(1))

def build(spec):
    c, side, classes, p = spec["in_channels"], spec["height"], spec["classes"], spec["dropout"]
    return {
        "resnet18": lambda: ResNetLike(Basic, c, classes, True),
        "preact-resnet18": lambda: ResNetLike(PreAct, c, classes, False),
        "wrn-34-10": lambda: WRN(c, classes, p),
        "small-cnn": lambda: SmallCNN(c, side, classes, p),
    }[spec["kind"]]()
