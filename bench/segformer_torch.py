"""SegFormer MiT-B0 in PyTorch eager, for `bench/segformer.ts` to time against TF.js on the same machine.

A faithful port of Hugging Face's `SegformerForSemanticSegmentation` (overlapping patch embeddings, efficient
self-attention with spatial reduction, Mix-FFN with a 3x3 depthwise conv and exact GELU, stochastic depth,
all-MLP decoder with BatchNorm) with the B0 config the TF.js side uses: hidden [32, 64, 160, 256],
depths [2, 2, 2, 2], heads [1, 2, 5, 8], sr [8, 4, 2, 1], decoder 256, drop_path 0.1, classifier dropout 0.1.

Prints one JSON object: median milliseconds of the 512x512 batch-1 inference forward and of a 256x256 batch-2
training step (forward + upsampled cross-entropy + backward + AdamW).
Usage: python3 bench/segformer_torch.py [--threads 2] [--runs 5] [--labels 2]
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN = [32, 64, 160, 256]
DEPTHS = [2, 2, 2, 2]
HEADS = [1, 2, 5, 8]
SR = [8, 4, 2, 1]
PATCH = [7, 3, 3, 3]
STRIDE = [4, 2, 2, 2]
MLP_RATIO = 4
DECODER = 256
DROP_PATH = 0.1
CLASSIFIER_DROPOUT = 0.1


class PatchEmbed(nn.Module):
    def __init__(self, cin, cout, k, s):
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, k, s, padding=k // 2)
        self.norm = nn.LayerNorm(cout)

    def forward(self, x):
        x = self.proj(x)
        _, _, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class EfficientAttention(nn.Module):
    def __init__(self, dim, heads, sr):
        super().__init__()
        self.heads, self.sr = heads, sr
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        if sr > 1:
            self.reduce = nn.Conv2d(dim, dim, sr, sr)
            self.reduce_norm = nn.LayerNorm(dim)

    def split(self, t):
        b, n, c = t.shape
        return t.view(b, n, self.heads, c // self.heads).permute(0, 2, 1, 3)

    def forward(self, x, h, w):
        b, n, c = x.shape
        q = self.split(self.query(x))
        kv = x
        if self.sr > 1:
            kv = self.reduce(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
            kv = self.reduce_norm(kv)
        k, v = self.split(self.key(kv)), self.split(self.value(kv))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(c // self.heads)
        ctx = torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).reshape(b, n, c)
        return self.out(ctx)


class MixFFN(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dw = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, h, w):
        x = self.fc1(x)
        b, n, c = x.shape
        x = self.dw(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


def drop_path(x, p, training):
    if p == 0.0 or not training:
        return x
    keep = 1 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class Block(nn.Module):
    def __init__(self, dim, heads, sr, dp):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientAttention(dim, heads, sr)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim, dim * MLP_RATIO)
        self.dp = dp

    def forward(self, x, h, w):
        x = x + drop_path(self.attn(self.norm1(x), h, w), self.dp, self.training)
        return x + drop_path(self.ffn(self.norm2(x), h, w), self.dp, self.training)


class Segformer(nn.Module):
    def __init__(self, num_labels):
        super().__init__()
        rates = torch.linspace(0, DROP_PATH, sum(DEPTHS)).tolist()
        self.embeds, self.stages, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        cin, i = 3, 0
        for s in range(4):
            self.embeds.append(PatchEmbed(cin, HIDDEN[s], PATCH[s], STRIDE[s]))
            self.stages.append(
                nn.ModuleList(Block(HIDDEN[s], HEADS[s], SR[s], rates[i + j]) for j in range(DEPTHS[s]))
            )
            self.norms.append(nn.LayerNorm(HIDDEN[s]))
            cin, i = HIDDEN[s], i + DEPTHS[s]
        self.mlps = nn.ModuleList(nn.Linear(c, DECODER) for c in HIDDEN)
        self.fuse = nn.Conv2d(4 * DECODER, DECODER, 1, bias=False)
        self.bn = nn.BatchNorm2d(DECODER)
        self.dropout = nn.Dropout(CLASSIFIER_DROPOUT)
        self.classifier = nn.Conv2d(DECODER, num_labels, 1)

    def forward(self, x):
        feats = []
        b = x.shape[0]
        for embed, blocks, norm in zip(self.embeds, self.stages, self.norms):
            x, h, w = embed(x)
            for blk in blocks:
                x = blk(x, h, w)
            x = norm(x).transpose(1, 2).reshape(b, -1, h, w)
            feats.append(x)
        size = feats[0].shape[2:]
        ups = []
        for f, mlp in zip(feats, self.mlps):
            y = mlp(f.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, DECODER, f.shape[2], f.shape[3])
            ups.append(F.interpolate(y, size=size, mode="bilinear", align_corners=False))
        y = self.fuse(torch.cat(ups[::-1], dim=1))
        return self.classifier(self.dropout(F.relu(self.bn(y))))


def median_ms(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--labels", type=int, default=2)
    ap.add_argument("--train-batch", type=int, default=2)
    ap.add_argument("--skip-forward", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Segformer(args.labels)
    params = sum(p.numel() for p in model.parameters())

    model.eval()
    x512 = torch.randn(1, 3, 512, 512)

    def infer():
        with torch.no_grad():
            return model(x512)

    forward_ms = None if args.skip_forward else median_ms(infer, args.runs)

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=6e-5, weight_decay=0.01)
    x256 = torch.randn(args.train_batch, 3, 256, 256)
    labels = torch.randint(0, args.labels, (args.train_batch, 256, 256))

    def step():
        logits = model(x256)
        up = F.interpolate(logits, size=labels.shape[1:], mode="bilinear", align_corners=False)
        loss = F.cross_entropy(up, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    train_ms = median_ms(step, args.runs)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "parameters": params,
        "forward_512_b1_ms": forward_ms,
        "train_step_256_b2_ms": train_ms if args.train_batch == 2 else None,
        "train_batch": args.train_batch,
        "train_step_256_ms": train_ms,
        "runs": args.runs,
    }))


if __name__ == "__main__":
    main()
