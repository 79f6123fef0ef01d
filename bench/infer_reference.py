"""PyTorch + OpenSlide reference for bench/infer-slide.ts: the same tissue tiles as slideseg's run, read with
OpenSlide, resized to the target resolution, normalised and run through the PyTorch SegFormer port in
bench/segformer_torch.py with the same weights, batched the same way.

Only the model logits are computed: no upsampling, blending, argmax or output writing (slideseg does all of those
in its timed loop, so the reference does strictly less work per tile).

usage: /usr/bin/python3 bench/infer_reference.py MODEL_DIR TILES.json [--threads N]
TILES.json: {"slide", "tile", "batch", "warmupBatches", "downsample", "resize": "box"|"bilinear",
             "tiles": [[level0X, level0Y], ...]}
prints one JSON line: {"tiles", "seconds", "tiles_per_s", "cpu_seconds", "cores_busy", "warmup_tiles", ...}
The first warmupBatches batches are a warm-up and are not timed (as on the slideseg side and for raw ONNX Runtime).
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import openslide
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segformer_torch import DEPTHS, Segformer  # noqa: E402

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        dt = np.dtype(DTYPES[e["dtype"]])
        a = np.frombuffer(buf, dt, offset=8 + n + begin, count=(end - begin) // dt.itemsize)
        out[name] = torch.from_numpy(a.reshape(e["shape"]).copy())
    return out


def hf_to_port(hf):
    """Hugging Face SegformerForSemanticSegmentation keys -> bench/segformer_torch.py parameter names."""
    m = {}
    for s in range(4):
        e = f"segformer.encoder.patch_embeddings.{s}"
        m[f"{e}.proj"] = f"embeds.{s}.proj"
        m[f"{e}.layer_norm"] = f"embeds.{s}.norm"
        m[f"segformer.encoder.layer_norm.{s}"] = f"norms.{s}"
        m[f"decode_head.linear_c.{s}.proj"] = f"mlps.{s}"
        for j in range(DEPTHS[s]):
            b, p = f"segformer.encoder.block.{s}.{j}", f"stages.{s}.{j}"
            for a, q in [
                ("layer_norm_1", "norm1"),
                ("layer_norm_2", "norm2"),
                ("attention.self.query", "attn.query"),
                ("attention.self.key", "attn.key"),
                ("attention.self.value", "attn.value"),
                ("attention.self.sr", "attn.reduce"),
                ("attention.self.layer_norm", "attn.reduce_norm"),
                ("attention.output.dense", "attn.out"),
                ("mlp.dense1", "ffn.fc1"),
                ("mlp.dwconv.dwconv", "ffn.dw"),
                ("mlp.dense2", "ffn.fc2"),
            ]:
                m[f"{b}.{a}"] = f"{p}.{q}"
    m["decode_head.linear_fuse"] = "fuse"
    m["decode_head.batch_norm"] = "bn"
    m["decode_head.classifier"] = "classifier"
    out = {}
    for k, v in hf.items():
        prefix, leaf = k.rsplit(".", 1)
        if prefix not in m:
            raise SystemExit(f"unmapped weight {k}")
        out[f"{m[prefix]}.{leaf}"] = v
    return out


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    net = Segformer(len(config["id2label"]))
    state = hf_to_port(read_safetensors(os.path.join(model_dir, "model.safetensors")))
    missing, unexpected = net.load_state_dict(state, strict=True), None
    del missing, unexpected
    return net.eval()


def cpu_seconds():
    """utime + stime of this process (all threads), from /proc/self/stat."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_stat():
    """Per-core (busy, total) jiffies from /proc/stat: cpu0, cpu1, ..."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(t) for t in line.split()[1:]]
                idle = v[3] + v[4]
                out.append((sum(v) - idle, sum(v)))
    return out


def core_use(a, b):
    return [(b1 - a1) / max(1, t1 - t0) for (a1, t0), (b1, t1) in zip(a, b)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("tiles")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.tiles) as f:
        job = json.load(f)
    net = load_model(args.model)
    slide = openslide.OpenSlide(job["slide"])
    tile, batch, ds = job["tile"], job["batch"], job["downsample"]
    level = slide.get_best_level_for_downsample(ds)
    lds = slide.level_downsamples[level]
    size = math.ceil(tile * ds / lds)
    resample = Image.BOX if job.get("resize") == "box" else Image.BILINEAR
    white = Image.new("RGBA", (size, size), (255, 255, 255, 255))

    def prepare(x, y):
        region = slide.read_region((x, y), level, (size, size))
        rgb = Image.alpha_composite(white, region).convert("RGB")
        if size != tile:
            rgb = rgb.resize((tile, tile), resample)
        a = (np.asarray(rgb, np.float32) / 255.0 - MEAN) / STD
        return a.transpose(2, 0, 1)

    tiles = job["tiles"]
    timed_tiles, t_start, c_start = 0, None, None
    warmup_batches = job["warmupBatches"]
    with torch.no_grad():
        for k, start in enumerate(range(0, len(tiles), batch)):
            group = tiles[start : start + batch]
            x = torch.from_numpy(np.stack([prepare(tx, ty) for tx, ty in group]))
            logits = net(x)
            assert logits.shape[2] == tile // 4
            if k + 1 == warmup_batches:  # the first batches warm up; the clock starts after them
                t_start, c_start, s_start = time.perf_counter(), cpu_seconds(), proc_stat()
            elif t_start is not None:
                timed_tiles += len(group)
    seconds = time.perf_counter() - t_start
    cpu = cpu_seconds() - c_start
    cores = core_use(s_start, proc_stat())
    print(
        json.dumps(
            {
                "tiles": len(tiles),
                "warmup_tiles": min(warmup_batches * batch, len(tiles)),
                "timed_tiles": timed_tiles,
                "seconds": seconds,
                "tiles_per_s": timed_tiles / seconds if seconds > 0 else 0,
                "cpu_seconds": cpu,
                "cores_busy": cpu / seconds if seconds > 0 else 0,
                "system_core_busy": cores,
                "threads": args.threads,
                "torch": torch.__version__,
                "openslide": openslide.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
