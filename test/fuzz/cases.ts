/**
 * Fuzz cases for the slide readers, all derived from a seed: random and structure-aware mutations of TIFF/SVS
 * files (the bundled sample always, shared fixtures when present), mutations of OME-Zarr stores (tiny generated
 * ones always, shared fixtures when present), and the crafted cases of issue 12. A case writes its input under a
 * folder and says what a correct reader must do with it: any clean outcome, or a clean error.
 */
import { cp, mkdir, readdir, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { fixture, needs, ROOT } from '../fixtures.ts';
import { writeTinyZarr } from './tiny-zarr.ts';

/** mulberry32: small, fast, good enough to pick mutations reproducibly. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzCase {
  id: string;
  /** What was done to which seed, for the report. */
  description: string;
  /** The seed input whose reference pixels an 'ok' answer is compared with, or null (crafted input). */
  seed: string | null;
  /** 'clean': an error or the right pixels; 'error': must be a clean error (a hostile input with no right pixels). */
  expect: 'clean' | 'error';
  /** Writes the input under `dir`; returns the path to open. */
  build(dir: string): Promise<string>;
}

export interface Seed {
  name: string;
  kind: 'tiff' | 'zarr';
  /** Writes (or copies) the unmutated input under `dir` and returns its path. */
  materialise(dir: string): Promise<string>;
}

/**
 * The seeds present here: the bundled SVS and generated stores always, the shared fixtures when checked out
 * (through `needs`, so that SLIDESEG_REQUIRE_FIXTURES=1 turns a missing one into a failure, as elsewhere).
 */
export function availableSeeds(): Seed[] {
  const seeds: Seed[] = [];
  const tiff = (name: string, path: string) => {
    seeds.push({ name, kind: 'tiff', materialise: async (dir) => copyTo(path, join(dir, name)) });
  };
  const shared = (...parts: string[]) => (needs(parts) ? null : fixture(...parts));
  tiff('cmu-1-small-region.svs', join(ROOT, 'samples', 'cmu-1-small-region.svs'));
  for (const parts of [
    ['derived', 'cmu-1-pyramid-pages.tif'],
    ['derived', 'cmu-1-pyramid-subifds.ome.tif'],
    ['slides', 'kidney-48-5.tif'],
    ['slides', 'tcga-cr-7395-01a-01-ts1.svs'],
  ]) {
    const path = shared(...parts);
    if (path) tiff(parts[1], path);
  }
  for (const [name, opts] of [
    ['tiny-v2-raw.zarr', { format: 2 }],
    ['tiny-v2-zlib.zarr', { format: 2, compressor: 'zlib' }],
    ['tiny-v3.zarr', { format: 3 }],
  ] as const) {
    seeds.push({
      name,
      kind: 'zarr',
      materialise: async (dir) => {
        const path = join(dir, name);
        await writeTinyZarr(path, opts);
        return path;
      },
    });
  }
  for (const name of [
    'blobs-v04.ome.zarr',
    'blobs-v05.ome.zarr',
    'ng-simple-0.4.zarr',
    'ng-simple-0.5.zarr',
  ]) {
    const path = shared('zarr', name);
    if (path) seeds.push({ name, kind: 'zarr', materialise: async (dir) => copyTo(path, join(dir, name)) });
  }
  return seeds;
}

async function copyTo(from: string, to: string): Promise<string> {
  await cp(from, to, { recursive: true });
  return to;
}

/** 32-bit values that break size arithmetic: zero, one, sign and size boundaries. */
const INTERESTING_U32 = [0, 1, 2, 7, 255, 256, 65535, 65536, 2 ** 27, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 1e6];
/** JPEG frame sizes around and far from a 240/256 tile. */
const INTERESTING_EDGES = [0, 1, 16, 239, 241, 255, 257, 512, 20000, 65500, 65535];

/** Little-endian TIFF or BigTIFF structure: IFD entry positions and tile (or strip) data ranges. */
interface TiffLayout {
  big: boolean;
  entries: number[];
  tiles: { offset: number; length: number }[];
}

function layoutOf(bytes: Uint8Array): TiffLayout {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const big = bytes[0] === 0x49 && v.getUint16(2, true) === 43;
  const layout: TiffLayout = { big, entries: [], tiles: [] };
  if (bytes[0] !== 0x49 || (!big && v.getUint16(2, true) !== 42)) return layout; // little-endian only
  const u = (at: number, wide: boolean) => (wide ? Number(v.getBigUint64(at, true)) : v.getUint32(at, true));
  const entrySize = big ? 20 : 12;
  const countSize = big ? 8 : 2;
  const seen = new Set<number>();
  const queue = [u(big ? 8 : 4, big)];
  while (queue.length > 0 && seen.size < 64) {
    const ifd = queue.shift() as number;
    if (ifd === 0 || seen.has(ifd) || ifd + countSize > bytes.length) continue;
    seen.add(ifd);
    const n = big ? u(ifd, true) : v.getUint16(ifd, true);
    const first = ifd + countSize;
    if (n > 4096 || first + n * entrySize + countSize > bytes.length) continue;
    const tags = new Map<number, { type: number; count: number; at: number }>();
    for (let i = 0; i < n; i++) {
      const p = first + i * entrySize;
      layout.entries.push(p);
      tags.set(v.getUint16(p, true), {
        type: v.getUint16(p + 2, true),
        count: u(p + 4, big),
        at: p + (big ? 12 : 8),
      });
    }
    const values = (tag: number): number[] => {
      const t = tags.get(tag);
      if (!t) return [];
      const size = t.type === 3 ? 2 : t.type === 16 ? 8 : 4;
      const base = t.count * size > (big ? 8 : 4) ? u(t.at, big) : t.at;
      if (base + t.count * size > bytes.length) return [];
      return Array.from({ length: Math.min(t.count, 100_000) }, (_, k) =>
        size === 2 ? v.getUint16(base + k * 2, true) : u(base + k * size, size === 8),
      );
    };
    const offsets = [...values(324), ...values(273)];
    const counts = [...values(325), ...values(279)];
    offsets.forEach((o, k) => {
      if (counts[k] > 0 && o + counts[k] <= bytes.length) layout.tiles.push({ offset: o, length: counts[k] });
    });
    queue.push(...values(330));
    queue.push(u(first + n * entrySize, big));
  }
  return layout;
}

function sofAt(bytes: Uint8Array, tile: { offset: number; length: number }): number {
  const end = tile.offset + tile.length;
  for (let i = tile.offset + 2; i + 9 < end; ) {
    if (bytes[i] !== 0xff) return -1;
    const m = bytes[i + 1];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return i;
    if (m === 0xda) return -1;
    i += 2 + ((bytes[i + 2] << 8) | bytes[i + 3]);
  }
  return -1;
}

type Mutator = (
  bytes: Uint8Array,
  layout: TiffLayout,
  r: () => number,
) => { bytes: Uint8Array; what: string };

const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)];
const int = (r: () => number, n: number) => Math.floor(r() * n);

const TIFF_MUTATORS: Mutator[] = [
  (b, _l, r) => {
    const k = 1 + int(r, 8);
    const at: number[] = [];
    for (let i = 0; i < k; i++) {
      const p = int(r, b.length);
      b[p] ^= 1 + int(r, 255);
      at.push(p);
    }
    return { bytes: b, what: `flip ${k} random bytes (${at.slice(0, 3).join(',')}…)` };
  },
  (b, l, r) => {
    if (l.entries.length === 0) return { bytes: b, what: 'no IFD entries (unchanged)' };
    const e = pick(r, l.entries);
    const field = pick(r, ['type', 'count', 'value'] as const);
    const value = pick(r, INTERESTING_U32);
    const v = new DataView(b.buffer, b.byteOffset);
    const at = field === 'type' ? e + 2 : field === 'count' ? e + 4 : e + (l.big ? 12 : 8);
    if (field === 'type') v.setUint16(at, value & 0xffff, true);
    else if (l.big) v.setBigUint64(at, BigInt(value) * (r() < 0.2 ? 2n ** 24n : 1n), true);
    else v.setUint32(at, value >>> 0, true);
    return { bytes: b, what: `IFD entry at ${e} (tag ${v.getUint16(e, true)}): ${field} := ${value}` };
  },
  (b, l, r) => {
    if (l.entries.length === 0) return { bytes: b, what: 'no IFD entries (unchanged)' };
    const e = pick(r, l.entries);
    const k = 1 + int(r, 4);
    for (let i = 0; i < k; i++) b[e + int(r, l.big ? 20 : 12)] ^= 1 + int(r, 255);
    return { bytes: b, what: `flip ${k} bytes of the IFD entry at ${e}` };
  },
  (b, _l, r) => {
    const cut = int(r, b.length);
    return { bytes: b.slice(0, cut), what: `truncate at byte ${cut}` };
  },
  (b, l, r) => {
    const jpeg = l.tiles.filter((t) => sofAt(b, t) >= 0);
    if (jpeg.length === 0) return { bytes: b, what: 'no JPEG tiles (unchanged)' };
    const tile = pick(r, jpeg);
    const sof = sofAt(b, tile);
    const w = pick(r, INTERESTING_EDGES);
    const h = pick(r, INTERESTING_EDGES);
    const v = new DataView(b.buffer, b.byteOffset);
    v.setUint16(sof + 5, h);
    v.setUint16(sof + 7, w);
    return { bytes: b, what: `JPEG tile at ${tile.offset}: SOF size := ${w}x${h}` };
  },
  (b, l, r) => {
    const j2k = l.tiles.filter(
      (t) => b[t.offset] === 0xff && b[t.offset + 1] === 0x4f && b[t.offset + 3] === 0x51,
    );
    if (j2k.length === 0) return { bytes: b, what: 'no JPEG 2000 tiles (unchanged)' };
    const tile = pick(r, j2k);
    const v = new DataView(b.buffer, b.byteOffset);
    const field = pick(r, [8, 12, 16, 24, 40] as const); // Xsiz, Ysiz, XOsiz, XTsiz, Csiz
    const value = pick(r, INTERESTING_U32);
    if (field === 40) v.setUint16(tile.offset + 40, value & 0xffff);
    else v.setUint32(tile.offset + field, value >>> 0);
    return { bytes: b, what: `JPEG 2000 tile at ${tile.offset}: SIZ field at +${field} := ${value}` };
  },
  (b, l, r) => {
    if (l.tiles.length === 0) return { bytes: b, what: 'no tiles (unchanged)' };
    const tile = pick(r, l.tiles);
    const k = 1 + int(r, 16);
    for (let i = 0; i < k; i++) b[tile.offset + int(r, tile.length)] ^= 1 + int(r, 255);
    return { bytes: b, what: `flip ${k} bytes inside the tile/strip at ${tile.offset}` };
  },
  (b, l, r) => {
    if (l.tiles.length === 0) return { bytes: b, what: 'no tiles (unchanged)' };
    const tile = pick(r, l.tiles);
    const keep = int(r, tile.length);
    b.fill(0, tile.offset + keep, tile.offset + tile.length);
    return { bytes: b, what: `zero the tile/strip at ${tile.offset} after ${keep} of ${tile.length} bytes` };
  },
  (b, _l, r) => {
    const len = 1 + int(r, 4096);
    const from = int(r, Math.max(1, b.length - len));
    const to = int(r, Math.max(1, b.length - len));
    b.copyWithin(to, from, from + len);
    return { bytes: b, what: `copy ${len} bytes from ${from} to ${to}` };
  },
];

/** Values that break Zarr metadata: zeros, negatives, fractions, huge, wrong types. */
const ZARR_FIELD_VALUES: Record<string, unknown[]> = {
  shape: [
    [3, 0, 64],
    [3, -64, 64],
    [3, 2 ** 54, 64],
    [3, 1e6, 1e6],
    [64, 64],
    'x',
    null,
    [3, 64.5, 64],
    [3, 64, 64, 64],
  ],
  chunks: [
    [3, 0, 32],
    [3, 1, 1],
    [3, -1, 32],
    [3, 32.5, 32],
    [3, 65536, 65536],
    [32, 32],
    null,
    [3, 2 ** 40, 32],
  ],
  dtype: ['<u2', '|b1', '<f2', '|O', 'x', 7, '<U4'],
  data_type: ['uint16', 'bool', 'float16', 'complex64', 'x', 7],
  compressor: [null, { id: 'zlib' }, { id: 'blosc' }, { id: 'lzma' }, { id: 'nope' }, 'zlib', { id: null }],
  fill_value: [null, 'NaN', 1e300, -1, 'x'],
  order: ['F', 'X', null],
  zarr_format: [1, 3, 2, '2', null],
  dimension_separator: ['.', '/', '|', ''],
  codecs: [
    [],
    [{ name: 'bytes' }, { name: 'bytes' }],
    [{ name: 'gzip' }],
    [{ name: 'nope' }],
    'x',
    [{ name: 'transpose', configuration: { order: [2, 1, 0] } }, { name: 'bytes' }],
  ],
  chunk_grid: [
    { name: 'regular', configuration: { chunk_shape: [3, 0, 32] } },
    { name: 'rectilinear' },
    null,
  ],
};

async function* walk(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else yield path;
  }
}

async function filesOf(root: string): Promise<{ meta: string[]; chunks: string[] }> {
  const meta: string[] = [];
  const chunks: string[] = [];
  for await (const f of walk(root)) {
    if (/(\.zarray|\.zattrs|\.zgroup|zarr\.json)$/.test(f)) meta.push(f);
    else chunks.push(f);
  }
  meta.sort();
  chunks.sort();
  return { meta, chunks };
}

type ZarrMutator = (root: string, r: () => number, outside: string) => Promise<string>;

const ZARR_MUTATORS: ZarrMutator[] = [
  async (root, r) => {
    const { meta } = await filesOf(root);
    const arrays = [];
    for (const f of meta) {
      const doc = JSON.parse(await readFile(f, 'utf8'));
      if (f.endsWith('.zarray') || doc.node_type === 'array') arrays.push({ f, doc });
    }
    if (arrays.length === 0) return 'no array metadata (unchanged)';
    const { f, doc } = pick(r, arrays);
    const keys = Object.keys(ZARR_FIELD_VALUES).filter((k) => k in doc);
    const key = pick(r, keys);
    const value = pick(r, ZARR_FIELD_VALUES[key]);
    doc[key] = value;
    await writeFile(f, JSON.stringify(doc));
    return `${f.slice(root.length + 1)}: ${key} := ${JSON.stringify(value)}`;
  },
  async (root, r) => {
    const { meta } = await filesOf(root);
    const f = pick(r, meta);
    const text = await readFile(f, 'utf8');
    const cut = int(r, text.length);
    await writeFile(f, text.slice(0, cut));
    return `${f.slice(root.length + 1)}: truncated at character ${cut}`;
  },
  async (root, r) => {
    const { meta } = await filesOf(root);
    const groups = [];
    for (const f of meta) {
      const doc = JSON.parse(await readFile(f, 'utf8'));
      const attrs = doc.attributes?.ome ?? doc.attributes ?? doc;
      if (Array.isArray(attrs.multiscales)) groups.push({ f, doc, ms: attrs.multiscales[0] });
    }
    if (groups.length === 0) return 'no multiscales (unchanged)';
    const { f, doc, ms } = pick(r, groups);
    const edits: [string, () => void][] = [
      ['dataset path ../..', () => (ms.datasets[0].path = '../../etc')],
      ['dataset path absolute', () => (ms.datasets[0].path = '/etc')],
      ['dataset path missing', () => (ms.datasets[0].path = 'nope')],
      ['no datasets', () => (ms.datasets = [])],
      ['axes removed', () => delete ms.axes],
      ['axes without x', () => (ms.axes = ms.axes?.filter((a: { name?: string }) => a.name !== 'x'))],
      [
        'scale zero',
        () =>
          (ms.datasets[0].coordinateTransformations = [
            { type: 'scale', scale: ms.axes?.map(() => 0) ?? [0] },
          ]),
      ],
      [
        'scale wrong length',
        () => (ms.datasets[0].coordinateTransformations = [{ type: 'scale', scale: [1] }]),
      ],
      ['datasets not a list', () => (ms.datasets = 'x')],
    ];
    const [what, edit] = pick(r, edits);
    edit();
    await writeFile(f, JSON.stringify(doc));
    return `${f.slice(root.length + 1)}: ${what}`;
  },
  async (root, r) => {
    const { chunks } = await filesOf(root);
    if (chunks.length === 0) return 'no chunks (unchanged)';
    const f = pick(r, chunks);
    const bytes = new Uint8Array(await readFile(f));
    const how = int(r, 5);
    let out: Uint8Array;
    let what: string;
    if (how === 0) {
      out = bytes.slice(0, int(r, bytes.length));
      what = `truncated to ${out.length} of ${bytes.length} bytes`;
    } else if (how === 1) {
      out = bytes;
      const k = 1 + int(r, 8);
      for (let i = 0; i < k && out.length > 0; i++) out[int(r, out.length)] ^= 1 + int(r, 255);
      what = `${k} bytes flipped`;
    } else if (how === 2) {
      out = new Uint8Array(int(r, 3 * bytes.length + 1)).map(() => int(r, 256));
      what = `replaced by ${out.length} random bytes`;
    } else if (how === 3) {
      out = new Uint8Array(deflateSync(bytes));
      what = 'replaced by its own deflate';
    } else {
      out = new Uint8Array(0);
      what = 'emptied';
    }
    await writeFile(f, out);
    return `${f.slice(root.length + 1)}: ${what}`;
  },
];

/** The symlink escape: a chunk replaced by a link to a file outside the store (must be refused). */
async function linkChunkOutside(root: string, outside: string): Promise<string> {
  const { chunks } = await filesOf(root);
  await unlink(chunks[0]);
  await symlink(outside, chunks[0]);
  return `${chunks[0].slice(root.length + 1)} -> ${outside}`;
}

/** The crafted inputs of issue 12 that must end as clean errors. */
function craftedCases(): FuzzCase[] {
  const twoEntry = (count: number, at: number) => {
    const b = new Uint8Array(102);
    const v = new DataView(b.buffer);
    b.set([0x49, 0x49, 42, 0]);
    v.setUint32(4, 8, true);
    v.setUint16(8, 2, true);
    const entry = (p: number, tag: number, type: number, n: number, value: number) => {
      v.setUint16(p, tag, true);
      v.setUint16(p + 2, type, true);
      v.setUint32(p + 4, n, true);
      v.setUint32(p + 8, value, true);
    };
    entry(10, 270, 2, 100, 1e6);
    entry(22, 273, 4, count, at);
    return b;
  };
  const cases: FuzzCase[] = [];
  for (const [count, at] of [
    [2 ** 27, 8],
    [8, 2 ** 27],
  ]) {
    cases.push({
      id: `crafted-two-entry-${count}-${at}`,
      description: `102-byte TIFF: ImageDescription at 10^6, ${count} StripOffsets at ${at}`,
      seed: null,
      expect: 'error',
      build: async (dir) => {
        const path = join(dir, 'crafted.tif');
        await writeFile(path, twoEntry(count, at));
        return path;
      },
    });
  }
  cases.push({
    id: 'crafted-zarr-symlink',
    description: 'OME-Zarr chunk symlinked to a file outside the store',
    seed: null,
    expect: 'error',
    build: async (dir) => {
      const root = join(dir, 'escape.zarr');
      await writeTinyZarr(root);
      const outside = join(dir, 'outside.bin');
      await writeFile(outside, new Uint8Array(3 * 32 * 32).fill(42));
      await linkChunkOutside(root, outside);
      return root;
    },
  });
  cases.push({
    id: 'crafted-zarr-zero-chunk',
    description: 'OME-Zarr with chunks [3,0,256]',
    seed: null,
    expect: 'error',
    build: async (dir) => {
      const root = join(dir, 'zero.zarr');
      await writeTinyZarr(root, { arrayMeta: { chunks: [3, 0, 256] }, noChunks: true });
      return root;
    },
  });
  cases.push({
    id: 'crafted-zarr-null-over-zlib',
    description: 'OME-Zarr compressor null over zlib chunks',
    seed: null,
    expect: 'error',
    build: async (dir) => {
      const root = join(dir, 'nullzlib.zarr');
      const keys = await writeTinyZarr(root, { compressor: 'zlib' });
      const meta = JSON.parse(await readFile(join(root, '0', '.zarray'), 'utf8'));
      meta.compressor = null;
      await writeFile(join(root, '0', '.zarray'), JSON.stringify(meta));
      void keys;
      return root;
    },
  });
  return cases;
}

/**
 * `count` cases from `seed`: the crafted ones first (when `count` allows), then mutations cycling over the
 * seeds (TIFF and Zarr alternately), each with its own sub-seed so that a case can be replayed alone.
 */
export function makeCases(seed: number, count: number, seeds = availableSeeds()): FuzzCase[] {
  const cases = craftedCases().slice(0, Math.max(0, Math.min(5, Math.floor(count / 8))));
  const tiffs = seeds.filter((s) => s.kind === 'tiff');
  const zarrs = seeds.filter((s) => s.kind === 'zarr');
  for (let i = 0; cases.length < count; i++) {
    const sub = (seed * 1_000_003 + i) >>> 0;
    const r = rng(sub);
    const useTiff = zarrs.length === 0 || (tiffs.length > 0 && i % 2 === 0);
    const base = useTiff ? tiffs[Math.floor(i / 2) % tiffs.length] : zarrs[Math.floor(i / 2) % zarrs.length];
    if (base.kind === 'tiff') {
      const mutator = pick(r, TIFF_MUTATORS);
      let what = '';
      cases.push({
        id: `m${i}-${base.name}`,
        get description() {
          return `${base.name}: ${what}`;
        },
        seed: base.name,
        expect: 'clean',
        build: async (dir) => {
          const original = await base.materialise(dir);
          const bytes = new Uint8Array(await readFile(original));
          const mutated = mutator(bytes, layoutOf(bytes), r);
          what = mutated.what;
          await writeFile(original, mutated.bytes);
          return original;
        },
      });
    } else {
      const mutator = pick(r, ZARR_MUTATORS);
      let what = '';
      cases.push({
        id: `m${i}-${base.name}`,
        get description() {
          return `${base.name}: ${what}`;
        },
        seed: base.name,
        expect: 'clean',
        build: async (dir) => {
          const root = await base.materialise(dir);
          what = await mutator(root, r, join(dir, 'outside'));
          return root;
        },
      });
    }
  }
  return cases;
}

/** Ensures `dir` exists (cases write their inputs there). */
export async function caseDir(base: string, id: string): Promise<string> {
  const dir = join(base, id);
  await mkdir(dir, { recursive: true });
  return dir;
}
