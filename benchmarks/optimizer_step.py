"""``LearnedOptimizer.step`` on real models' parameter lists, measured two ways in one run:

1. many tensors against one: the step on the parameter tensors of ResNet-18 (62 tensors, 11.7 M
   parameters), a small GPT (76 tensors) and 200 tensors of 1,000 parameters, against the step on a single
   tensor of the same total size (medians of interleaved repetitions);
2. the optimizer step as a fraction of a forward + backward pass, for Adam and for the learned optimizer,
   on the paper's MNIST MLP (784-20-10 sigmoid, batch 128), a small conv net (2 × conv-ReLU-pool and a
   linear layer, batch 128 of 28 × 28) and a ResNet-18-shaped model (batch 16 of 3 × 64 × 64).

    .venv/bin/python benchmarks/optimizer_step.py [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from l2o import LearnedOptimizer, kernels


def resnet18_shapes() -> list[tuple[int, ...]]:
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            c_in = cin if block == 0 else cout
            shapes += [(cout, c_in, 3, 3), (cout,), (cout,), (cout, cout, 3, 3), (cout,), (cout,)]
            if block == 0 and (stride != 1 or c_in != cout):
                shapes += [(cout, c_in, 1, 1), (cout,), (cout,)]
        cin = cout
    return shapes + [(1000, 512), (1000,)]


def gpt_shapes(layers: int = 6, d: int = 256, vocab: int = 1024, context: int = 256) -> list[tuple[int, ...]]:
    shapes = [(vocab, d), (context, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return shapes + [(d,), (d,)]


def timed(fn, reps: int) -> float:
    fn()  # warm-up (and the state's first allocation)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def step_on(shapes, reps: int) -> float:
    gen = torch.Generator().manual_seed(0)
    params = [torch.zeros(s, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3
    opt = LearnedOptimizer(params, checkpoint="mnist")
    return timed(opt.step, reps)


def many_against_one(reps: int) -> None:
    print(f"{'parameters':<28} {'tensors':>7} {'size':>11} {'many ms':>9} {'one ms':>9} {'many / one':>11}")
    cases = [("ResNet-18", resnet18_shapes()), ("small GPT (6 x 256)", gpt_shapes()),
             ("200 x 1,000", [(1000,)] * 200)]
    for label, shapes in cases:
        n = sum(torch.Size(s).numel() for s in shapes)
        many, one = [], []
        for _ in range(3):  # interleaved
            many.append(step_on(shapes, reps))
            one.append(step_on([(n,)], reps))
        m, o = statistics.median(many), statistics.median(one)
        print(f"{label:<28} {len(shapes):>7} {n:>11,} {m * 1e3:>9.2f} {o * 1e3:>9.2f} {m / o:>10.2f}×")


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks += [Block(cin, cout, stride), Block(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


def fraction_of_forward_backward(reps: int) -> None:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 20), nn.Sigmoid(), nn.Linear(20, 10))
    cases = [("MNIST MLP 784-20-10", mlp, torch.rand(128, 784), 10),
             ("conv net", ConvNet(), torch.rand(128, 1, 28, 28), 10),
             ("ResNet-18 (16 x 3 x 64 x 64)", ResNet18(), torch.rand(16, 3, 64, 64), 1000)]
    print(f"{'model':<30} {'params':>11} {'fwd+bwd ms':>11} {'Adam ms':>8} {'learned ms':>11} {'Adam / fb':>10} "
          f"{'learned / fb':>13}")
    for label, model, x, classes in cases:
        y = torch.randint(0, classes, (x.shape[0],))

        def forward_backward():
            model.zero_grad(set_to_none=False)
            nn.functional.cross_entropy(model(x), y).backward()

        fb = timed(forward_backward, reps)
        adam = torch.optim.Adam(model.parameters(), lr=1e-3)
        learned = LearnedOptimizer(model.named_parameters(), checkpoint="mnist", lr=0.0)  # lr 0: the model stays
        a, lo = timed(adam.step, reps), timed(learned.step, reps)
        n = sum(p.numel() for p in model.parameters())
        print(f"{label:<30} {n:>11,} {fb * 1e3:>11.2f} {a * 1e3:>8.2f} {lo * 1e3:>11.2f} {a / fb:>9.2f}× "
              f"{lo / fb:>12.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    info = kernels.status()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; learned optimizer 'mnist' on the "
          f"{'fused kernel ' + info['name'] if info['ready'] else 'PyTorch implementation (' + str(info['error']) + ')'}")
    many_against_one(args.reps)
    print()
    fraction_of_forward_backward(args.reps)


if __name__ == "__main__":
    main()
