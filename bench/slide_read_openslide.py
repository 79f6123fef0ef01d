"""OpenSlide reference for bench/slide-read.ts: random 256x256 level-0 read_region calls per second.

Usage: python3 bench/slide_read_openslide.py SLIDE N SEED [WARMUP]  -> prints JSON {"reads_per_s": ...}
Positions come from the same xorshift generator as the TypeScript bench, so both read the same regions: WARMUP
untimed reads first, then N timed ones.
"""
import json
import sys
import time

import openslide


def positions(n, seed, width, height, size):
    state = seed & 0xFFFFFFFF
    out = []
    for _ in range(n):
        xy = []
        for limit in (width - size, height - size):
            state ^= (state << 13) & 0xFFFFFFFF
            state ^= state >> 17
            state ^= (state << 5) & 0xFFFFFFFF
            xy.append(state % (limit + 1))
        out.append(tuple(xy))
    return out


def main():
    path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    warmup = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    slide = openslide.OpenSlide(path)
    w, h = slide.dimensions
    pts = positions(warmup + n, seed, w, h, 256)
    for x, y in pts[:warmup]:
        slide.read_region((x, y), 0, (256, 256))
    pts = pts[warmup:]
    start = time.perf_counter()
    for x, y in pts:
        slide.read_region((x, y), 0, (256, 256))
    elapsed = time.perf_counter() - start
    print(json.dumps({"reads": n, "seconds": elapsed, "reads_per_s": n / elapsed, "version": openslide.__library_version__}))


if __name__ == "__main__":
    main()
