/** Writes tiny hand-made OME-Zarr images (one uint8 level, axes c,y,x) for the hostile-input tests and the fuzzer. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

export interface TinyZarr {
  /** Zarr format: 2 (.zarray) or 3 (zarr.json). Default 2. */
  format?: 2 | 3;
  /** [c, y, x]; default [3, 64, 64]. */
  shape?: number[];
  /** Default [3, 32, 32]. */
  chunks?: number[];
  /** v2 compressor (default null); 'zlib' writes deflated chunks. */
  compressor?: null | 'zlib';
  /** Pixel value at (c, y, x); default a deterministic pattern. */
  value?: (c: number, y: number, x: number) => number;
  /** Extra or replacing fields of the array metadata (.zarray or zarr.json). */
  arrayMeta?: Record<string, unknown>;
  /** Write metadata only (every chunk reads as the fill value). */
  noChunks?: boolean;
}

export function pattern(c: number, y: number, x: number): number {
  return (c * 83 + y * 7 + x * 3) & 255;
}

/** Writes the store at `dir`; returns the chunk keys written (e.g. '0/0/0/0' for v2, '0/c/0/0/0' for v3). */
export async function writeTinyZarr(dir: string, opts: TinyZarr = {}): Promise<string[]> {
  const format = opts.format ?? 2;
  const shape = opts.shape ?? [3, 64, 64];
  const chunks = opts.chunks ?? [3, 32, 32];
  const value = opts.value ?? pattern;
  await mkdir(join(dir, '0'), { recursive: true });
  const multiscales = [
    {
      version: format === 3 ? '0.5' : '0.4',
      axes: [
        { name: 'c', type: 'channel' },
        { name: 'y', type: 'space', unit: 'micrometer' },
        { name: 'x', type: 'space', unit: 'micrometer' },
      ],
      datasets: [{ path: '0', coordinateTransformations: [{ type: 'scale', scale: [1, 0.5, 0.5] }] }],
    },
  ];
  if (format === 2) {
    await writeFile(join(dir, '.zgroup'), JSON.stringify({ zarr_format: 2 }));
    await writeFile(join(dir, '.zattrs'), JSON.stringify({ multiscales }));
    const compressor = opts.compressor === 'zlib' ? { id: 'zlib', level: 1 } : null;
    await writeFile(
      join(dir, '0', '.zarray'),
      JSON.stringify({
        zarr_format: 2,
        shape,
        chunks,
        dtype: '|u1',
        compressor,
        filters: null,
        fill_value: 0,
        order: 'C',
        dimension_separator: '/',
        ...opts.arrayMeta,
      }),
    );
  } else {
    await writeFile(
      join(dir, 'zarr.json'),
      JSON.stringify({
        zarr_format: 3,
        node_type: 'group',
        attributes: { ome: { version: '0.5', multiscales } },
      }),
    );
    await writeFile(
      join(dir, '0', 'zarr.json'),
      JSON.stringify({
        zarr_format: 3,
        node_type: 'array',
        shape,
        data_type: 'uint8',
        chunk_grid: { name: 'regular', configuration: { chunk_shape: chunks } },
        chunk_key_encoding: { name: 'default', configuration: { separator: '/' } },
        fill_value: 0,
        codecs: [{ name: 'bytes', configuration: { endian: 'little' } }],
        ...opts.arrayMeta,
      }),
    );
  }
  const keys: string[] = [];
  if (opts.noChunks) return keys;
  const grid = shape.map((s, i) => Math.ceil(s / chunks[i]));
  for (let gc = 0; gc < grid[0]; gc++) {
    for (let gy = 0; gy < grid[1]; gy++) {
      for (let gx = 0; gx < grid[2]; gx++) {
        const data = new Uint8Array(chunks[0] * chunks[1] * chunks[2]);
        let i = 0;
        for (let c = 0; c < chunks[0]; c++)
          for (let y = 0; y < chunks[1]; y++)
            for (let x = 0; x < chunks[2]; x++) {
              const [C, Y, X] = [gc * chunks[0] + c, gy * chunks[1] + y, gx * chunks[2] + x];
              data[i++] = C < shape[0] && Y < shape[1] && X < shape[2] ? value(C, Y, X) : 0;
            }
        const parts = format === 2 ? ['0', gc, gy, gx] : ['0', 'c', gc, gy, gx];
        const key = parts.join('/');
        await mkdir(join(dir, ...parts.slice(0, -1).map(String)), { recursive: true });
        await writeFile(join(dir, key), opts.compressor === 'zlib' ? deflateSync(data) : data);
        keys.push(key);
      }
    }
  }
  return keys;
}

/** The RGBA pixels a reader must return for a region of a 3-channel tiny store. */
export function expectedRgba(
  x0: number,
  y0: number,
  w: number,
  h: number,
  value: (c: number, y: number, x: number) => number = pattern,
): Uint8Array {
  const out = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      for (let c = 0; c < 3; c++) out[o + c] = value(c, y0 + y, x0 + x);
      out[o + 3] = 255;
    }
  return out;
}
