"""The research code's PGD-AT loop in plain PyTorch, timed the way `adarat bench` times adarat.

What it reproduces of xiyan0524/AdaRAT (train/PGD_AT/train_cifar10.py, attack/*.py, data/load_cifar10.py):
* data: uint8 HWC images in host memory, per-image RandomCrop(pad 4) + RandomHorizontalFlip + ToTensor in a
  Dataset, a DataLoader with batch 128, shuffle and one worker process (the test set: RandomCrop + ToTensor);
* training: SGD(momentum 0.9, wd 5e-4) recreated every epoch; per batch `net.train()`, a new PGD_Attack
  object, PGD-10 in train mode with input-only gradients (`torch.autograd.grad`), clean and adversarial
  forwards, CE on the adversarial logits, backward, step, and `.item()` / `.cpu()` statistics;
* the per-epoch test: eval mode, FGSM and PGD-10 per test batch, `.item()` statistics;
* the final table: FGSM, PGD-10/20/50 and CW-20 (whose backward also fills the weights' `.grad`).
cuDNN runs deterministic without autotuning, as the research code sets it.

`--upgrades` turns on, one by one, what adarat does differently, to measure what each change buys:
device-data (the dataset on the device, batched crop and flip there), no-sync (statistics accumulated on the
device), cudnn-benchmark (autotuned convolutions), bf16 (autocast for the training step).

The images are random (speed does not depend on them). Prints one JSON object on stdout.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import reference_models  # noqa: E402

UPGRADES = ("device-data", "no-sync", "channels-last", "cudnn-benchmark", "bf16")


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--side", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--train", type=int, required=True)
    p.add_argument("--test", type=int, default=0, help="0: no test pass and no table")
    p.add_argument("--epochs", type=int, default=2, help="the last one is timed")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--table", action="store_true", help="also time the final attack table")
    p.add_argument("--upgrades", default="", help="comma-separated: " + ", ".join(UPGRADES))
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    args.upgrades = [u for u in args.upgrades.split(",") if u]
    for u in args.upgrades:
        if u not in UPGRADES:
            p.error(f"unknown upgrade {u}")
    return args


# ---- the research code's data path: per-image transforms in a DataLoader worker -------------------------

class HostImages(torch.utils.data.Dataset):
    """CIFAR10-like: `data` uint8 [N, H, W, C] (a torch tensor), per-image transforms on access."""

    def __init__(self, data, labels, flip):
        self.data, self.labels, self.flip = data, labels, flip
        try:
            import torchvision.transforms as T
            from PIL import Image
            steps = [T.RandomCrop(data.shape[1], padding=4)] + ([T.RandomHorizontalFlip()] if flip else [])
            self.torchvision = (T.Compose(steps + [T.ToTensor()]), Image)
        except ImportError:
            self.torchvision = None

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = self.data[i]
        if self.torchvision is not None:
            transform, image = self.torchvision
            pixels = img.numpy()
            pil = image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels)
            return transform(pil), int(self.labels[i])
        # The same three steps without torchvision: zero-padded random crop, random flip, ToTensor.
        side = img.shape[0]
        padded = torch.nn.functional.pad(img.permute(2, 0, 1), (4, 4, 4, 4))
        top, left = torch.randint(0, 9, (2,)).tolist()
        crop = padded[:, top:top + side, left:left + side]
        if self.flip and torch.rand(1).item() < 0.5:
            crop = crop.flip(-1)
        return crop.contiguous().float().div(255), int(self.labels[i])


def transforms_used():
    try:
        import torchvision  # noqa: F401
        import PIL  # noqa: F401
        return "torchvision"
    except ImportError:
        return "torch per image (torchvision not installed)"


# ---- adarat's data path, for the device-data upgrade ---------------------------------------------------

def device_batches(images, labels, batch, shuffle, flip):
    """images uint8 [N, C, H, W] on the device; crops (and flips) a whole batch in one gather."""
    n = len(labels)
    order = torch.randperm(n, device=images.device) if shuffle else torch.arange(n, device=images.device)
    for start in range(0, n, batch):
        idx = order[start:start + batch]
        x = images[idx]
        b, c, h, w = x.shape
        padded = F.pad(x, (4, 4, 4, 4))
        top = torch.randint(0, 9, (b, 1), device=x.device)
        left = torch.randint(0, 9, (b, 1), device=x.device)
        rows = (top + torch.arange(h, device=x.device)).view(b, 1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, w)
        if flip:
            mirrored = torch.randint(0, 2, (b, 1), device=x.device)
            cols = cols + mirrored * (w - 1 - 2 * cols)
        cols = (left + cols).view(b, 1, 1, w)
        out = padded[torch.arange(b, device=x.device).view(b, 1, 1, 1),
                     torch.arange(c, device=x.device).view(1, c, 1, 1), rows, cols]
        yield out.float().div(255), labels[idx]


# ---- the research code's attacks ------------------------------------------------------------------------

class PGD_Attack:
    def __init__(self, model, epsilon, step_size, iteration):
        self.model, self.epsilon, self.step_size, self.iteration = model, epsilon, step_size, iteration

    def attack(self, inputs, labels):
        x = inputs.detach() + torch.zeros_like(inputs).uniform_(-self.epsilon, self.epsilon)
        x = torch.clamp(x, 0, 1)
        for _ in range(self.iteration):
            x.requires_grad_()
            with torch.enable_grad():
                loss = F.cross_entropy(self.model(x), labels)
            grad = torch.autograd.grad(loss, [x])[0]
            x = x.detach() + self.step_size * torch.sign(grad.detach())
            x = torch.min(torch.max(x, inputs - self.epsilon), inputs + self.epsilon)
            x = torch.clamp(x, 0, 1)
        return x


def fgsm(model, inputs, labels, epsilon):
    x = inputs.detach().requires_grad_()
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), labels)
    grad = torch.autograd.grad(loss, [x])[0]
    return torch.clamp(x.detach() + epsilon * torch.sign(grad), 0, 1)


def cw(model, X, y, epsilon, steps, step_size, classes):
    X_pgd = (X.data + torch.zeros_like(X).uniform_(-epsilon, epsilon)).requires_grad_()
    for _ in range(steps):
        opt = torch.optim.SGD([X_pgd], lr=1e-3)
        opt.zero_grad()
        with torch.enable_grad():
            logits = model(X_pgd)
            onehot = F.one_hot(y, classes).float()
            self_loss = (onehot * logits).sum(1)
            other = torch.max((1 - onehot) * logits - onehot * 1000, dim=1)[0]
            loss = -torch.clamp(self_loss - other + 50, 0).sum() / len(y)
        loss.backward()
        X_pgd = X_pgd.data + step_size * X_pgd.grad.data.sign()
        X_pgd = X.data + torch.clamp(X_pgd - X.data, -epsilon, epsilon)
        X_pgd = torch.clamp(X_pgd, 0, 1.0).requires_grad_()
    return X_pgd.detach()


# ---- the loops -------------------------------------------------------------------------------------------

def main():
    args = parse()
    up = set(args.upgrades)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = "cudnn-benchmark" not in up
    torch.backends.cudnn.benchmark = "cudnn-benchmark" in up
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled="bf16" in up)

    spec = {"kind": args.model, "in_channels": args.channels, "height": args.side, "classes": args.classes,
            "dropout": args.dropout}
    net = reference_models.build(spec).to(device)
    if "channels-last" in up:
        net = net.to(memory_format=torch.channels_last)
    eps, alpha = 8 / 255, 2 / 255
    shape = (args.side, args.side, args.channels)
    train_x = torch.randint(0, 256, (args.train,) + shape, dtype=torch.uint8)
    train_y = torch.randint(0, args.classes, (args.train,))
    test_x = torch.randint(0, 256, (args.test,) + shape, dtype=torch.uint8)
    test_y = torch.randint(0, args.classes, (args.test,))

    if "device-data" in up:
        on_device = [t.to(device) for t in (train_x.permute(0, 3, 1, 2).contiguous(), train_y,
                                             test_x.permute(0, 3, 1, 2).contiguous(), test_y)]
        train_loader = lambda: device_batches(on_device[0], on_device[1], args.batch_size, True, True)  # noqa
        test_loader = lambda: device_batches(on_device[2], on_device[3], args.batch_size, False, False)  # noqa
    else:
        loader = torch.utils.data.DataLoader
        train_set = HostImages(train_x, train_y, flip=True)
        test_set = HostImages(test_x, test_y, flip=False)
        train_loader = lambda: loader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=1)  # noqa
        test_loader = lambda: loader(test_set, batch_size=args.batch_size, shuffle=False, num_workers=1)  # noqa
    to_device = (lambda t: t) if "device-data" in up else (lambda t: t.to(device))

    result = {"torch": torch.__version__, "upgrades": args.upgrades, "transforms": transforms_used()}
    for epoch in range(args.epochs):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        total, stats = 0, []
        sync()
        start = time.time()
        for inputs, labels in train_loader():
            net.train()
            inputs, labels = to_device(inputs), to_device(labels)
            optimizer.zero_grad()
            with autocast:
                perturbed = PGD_Attack(net, eps, alpha, 10).attack(inputs, labels)
                clean_outputs = net(inputs)
                perturbed_outputs = net(perturbed)
                clean_loss = F.cross_entropy(clean_outputs, labels)
                perturbed_loss = F.cross_entropy(perturbed_outputs, labels)
            perturbed_loss.backward()
            optimizer.step()
            total += labels.size(0)
            row = (clean_loss.detach(), clean_outputs.argmax(1).eq(labels).sum(),
                   perturbed_loss.detach(), perturbed_outputs.argmax(1).eq(labels).sum())
            if "no-sync" in up:
                stats.append(torch.stack([v.float() for v in row]))
            else:
                stats.append([row[0].item(), row[1].cpu().item(), row[2].item(), row[3].cpu().item()])
        if stats and "no-sync" in up:
            torch.stack(stats).sum(0).tolist()
        sync()
        result["train_images_per_second"] = total / (time.time() - start)

    if args.test:
        net.eval()
        sync()
        start = time.time()
        with torch.no_grad():
            for inputs, labels in test_loader():
                inputs, labels = to_device(inputs), to_device(labels)
                fgsm_images = fgsm(net, inputs, labels, eps)
                pgd_images = PGD_Attack(net, eps, alpha, 10).attack(inputs, labels)
                for images in (inputs, fgsm_images, pgd_images):
                    logits = net(images)
                    F.cross_entropy(logits, labels).item()
                    logits.argmax(1).eq(labels).cpu().sum()
        sync()
        result["test_images_per_second"] = args.test / (time.time() - start)

    if args.test and args.table:
        sync()
        start = time.time()
        with torch.no_grad():
            for inputs, labels in test_loader():
                inputs, labels = to_device(inputs), to_device(labels)
                with torch.enable_grad():
                    attacked = [PGD_Attack(net, eps, alpha, k).attack(inputs, labels) for k in (10, 20, 50)]
                    attacked.append(fgsm(net, inputs, labels, eps))
                    attacked.append(cw(net, inputs, labels, eps, 20, alpha, args.classes))
                for images in attacked:
                    net(images).argmax(1).eq(labels).cpu().sum()
        sync()
        result["table_images_per_second"] = args.test / (time.time() - start)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
