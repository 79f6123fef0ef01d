"""PyTorch eager SegFormer (SegformerForSemanticSegmentation, eval mode) for bench/onnx-segformer.ts.

A compact functional port written against torch 1.13 APIs, reading the same Hugging Face checkpoint folder
(config.json + model.safetensors, parsed with numpy). It times the forward pass on the given NCHW float32 .npy
input and writes the logits, so the caller can check the ONNX Runtime output against it.

usage: python3 bench/onnx_torch.py MODEL_DIR INPUT.npy OUT_LOGITS.npy --runs N --warmup W --threads T
prints one JSON line: {"median_ms", "mean_ms", "runs", "threads", "torch"}
"""
import argparse
import json
import math
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] not in DTYPES:
            continue
        begin, end = entry["data_offsets"]
        array = np.frombuffer(buf, DTYPES[entry["dtype"]], offset=8 + n + begin, count=(end - begin) // np.dtype(DTYPES[entry["dtype"]]).itemsize)
        tensors[name] = torch.from_numpy(array.reshape(entry["shape"]).astype(np.float32, copy=True))
    return tensors


class Segformer:
    """Eval-mode forward pass; every nn.LayerNorm in the HF port uses eps 1e-5, as does the BatchNorm."""

    def __init__(self, config, weights):
        self.c = config
        self.w = weights

    def layer_norm(self, x, key):
        return F.layer_norm(x, (x.shape[-1],), self.w[key + ".weight"], self.w[key + ".bias"], 1e-5)

    def linear(self, x, key):
        return F.linear(x, self.w[key + ".weight"], self.w[key + ".bias"])

    def attention(self, x, h, w, s, prefix):
        c = self.c["hidden_sizes"][s]
        heads = self.c["num_attention_heads"][s]
        sr = self.c["sr_ratios"][s]
        b, n, _ = x.shape
        d = c // heads
        q = self.linear(x, prefix + ".query").view(b, n, heads, d).permute(0, 2, 1, 3)
        kv = x
        if sr > 1:
            m = x.permute(0, 2, 1).reshape(b, c, h, w)
            m = F.conv2d(m, self.w[prefix + ".sr.weight"], self.w[prefix + ".sr.bias"], stride=sr)
            kv = self.layer_norm(m.reshape(b, c, -1).permute(0, 2, 1), prefix + ".layer_norm")
        k = self.linear(kv, prefix + ".key").view(b, -1, heads, d).permute(0, 2, 3, 1)
        v = self.linear(kv, prefix + ".value").view(b, -1, heads, d).permute(0, 2, 1, 3)
        probs = torch.softmax(torch.matmul(q, k) / math.sqrt(d), dim=-1)
        return torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, n, c)

    def block(self, x, h, w, s, j):
        p = f"segformer.encoder.block.{s}.{j}"
        a = self.attention(self.layer_norm(x, p + ".layer_norm_1"), h, w, s, p + ".attention.self")
        x = x + self.linear(a, p + ".attention.output.dense")
        y = self.linear(self.layer_norm(x, p + ".layer_norm_2"), p + ".mlp.dense1")
        b, n, hidden = y.shape
        m = y.transpose(1, 2).reshape(b, hidden, h, w)
        m = F.conv2d(m, self.w[p + ".mlp.dwconv.dwconv.weight"], self.w[p + ".mlp.dwconv.dwconv.bias"], padding=1, groups=hidden)
        y = F.gelu(m.flatten(2).transpose(1, 2))
        return x + self.linear(y, p + ".mlp.dense2")

    def forward(self, pixels):
        stages = []
        x = pixels
        for s in range(len(self.c["hidden_sizes"])):
            p = f"segformer.encoder.patch_embeddings.{s}"
            k = self.c["patch_sizes"][s]
            x = F.conv2d(x, self.w[p + ".proj.weight"], self.w[p + ".proj.bias"], stride=self.c["strides"][s], padding=k // 2)
            b, c, h, w = x.shape
            t = self.layer_norm(x.flatten(2).transpose(1, 2), p + ".layer_norm")
            for j in range(self.c["depths"][s]):
                t = self.block(t, h, w, s, j)
            t = self.layer_norm(t, f"segformer.encoder.layer_norm.{s}")
            x = t.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()
            stages.append(x)
        size = stages[0].shape[2:]
        ups = []
        for i, f in enumerate(stages):
            b, c, h, w = f.shape
            y = self.linear(f.flatten(2).transpose(1, 2), f"decode_head.linear_c.{i}.proj")
            y = y.permute(0, 2, 1).reshape(b, -1, h, w)
            ups.append(F.interpolate(y, size=size, mode="bilinear", align_corners=False))
        y = F.conv2d(torch.cat(ups[::-1], dim=1), self.w["decode_head.linear_fuse.weight"])
        y = F.batch_norm(
            y,
            self.w["decode_head.batch_norm.running_mean"],
            self.w["decode_head.batch_norm.running_var"],
            self.w["decode_head.batch_norm.weight"],
            self.w["decode_head.batch_norm.bias"],
            training=False,
            eps=1e-5,
        )
        y = F.relu(y)
        return F.conv2d(y, self.w["decode_head.classifier.weight"], self.w["decode_head.classifier.bias"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("out")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with open(f"{args.model}/config.json") as f:
        config = json.load(f)
    model = Segformer(config, read_safetensors(f"{args.model}/model.safetensors"))
    pixels = torch.from_numpy(np.load(args.input))
    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.runs):
            start = time.perf_counter()
            logits = model.forward(pixels)
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1000)
    np.save(args.out, logits.numpy().astype(np.float32))
    print(json.dumps({
        "median_ms": float(np.median(times)),
        "mean_ms": float(np.mean(times)),
        "runs": args.runs,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
