"""How hard each half of a split of Fashion-MNIST's ten classes into five and five is, by a cheap proxy that
involves no learned optimizer: softmax regression on the half's meta-training images (the first 5/6 of the training
set), full batch, 300 steps of Adam (lr 0.01); the half's difficulty is its training loss at the end. Every split
whose five-class half holds classes 0 and 1 (the two-class task's, which LSTM-sub must not see): 56 splits, about
10 minutes of one core. Usage: python docs/cifar/trials/balanced/split/proxy.py
Output: proxy.json ("(five)": [difficulty of five, difficulty of the other five]) and the splits ranked by how far
apart their halves are (|log ratio|)."""
import itertools, json, math, time
from pathlib import Path
import numpy as np, torch
from l2o.data.datasets import load
torch.manual_seed(0); torch.set_num_threads(1)
a = load("fashion-mnist")
n = len(a.train_labels) * 5 // 6
X = torch.tensor(a.train_images[:n].reshape(n, -1), dtype=torch.float32) / 255.0
Y = torch.tensor(a.train_labels[:n].astype(np.int64))
def difficulty(classes):
    m = torch.isin(Y, torch.tensor(classes)); x, y = X[m], Y[m]
    remap = torch.full((10,), -1, dtype=torch.long); remap[list(classes)] = torch.arange(len(classes)); y = remap[y]
    W = torch.zeros(784, len(classes), requires_grad=True); b = torch.zeros(len(classes), requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=0.01)
    for _ in range(300):
        opt.zero_grad(); loss = torch.nn.functional.cross_entropy(x @ W + b, y); loss.backward(); opt.step()
    return float(loss.detach())
res = {}
t = time.time()
for five in itertools.combinations(range(10), 5):
    if 0 not in five or 1 not in five: continue  # `two` (0, 1) stays, so the evaluated half holds 0 and 1
    rest = tuple(c for c in range(10) if c not in five)
    res[str(five)] = (difficulty(five), difficulty(rest))
    print(five, rest, res[str(five)], f"{time.time()-t:.0f}s", flush=True)
json.dump(res, open(Path(__file__).with_name("proxy.json"), "w"), indent=1)
for k, (d5, d_rest) in sorted(res.items(), key=lambda kv: abs(math.log(kv[1][0] / kv[1][1])))[:5]:
    print("closest halves:", k, f"{d5:.4f} {d_rest:.4f} ratio {d5 / d_rest:.3f}")
