/**
 * Classification data sets for `eval-encoder`: a folder per class (`DIR/<class>/*.png`) or a CSV manifest
 * (`path,label[,split]`) whose paths are image files or slide regions `slide.svs#x,y,w,h[,level]`.
 * Samples without a split are split by a seeded, class-stratified shuffle.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import sharp from 'sharp';
import { readImageRGB } from '../image/read.ts';
import { createRng } from '../patching/random.ts';
import { openSlide } from '../slide/index.ts';

export type Split = 'train' | 'val' | 'test';
export const SPLITS: Split[] = ['train', 'val', 'test'];

export interface SampleRef {
  /** An image file, or a slide file with a region. */
  path: string;
  region?: { x: number; y: number; width: number; height: number; level: number };
  label: number;
  split: Split;
}

export interface ClassificationDataset {
  source: string;
  classes: string[];
  samples: SampleRef[];
}

export interface SplitOptions {
  /** Fractions of each class held out for validation and test (default 0.2 and 0.2). */
  valFraction?: number;
  testFraction?: number;
  seed?: number;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff']);

/** Seeded, stratified split of samples that have none yet; each non-empty fraction gets ≥ 1 sample per class. */
function assignSplits(items: Omit<SampleRef, 'split'>[], numClasses: number, o: SplitOptions): SampleRef[] {
  const val = o.valFraction ?? 0.2;
  const test = o.testFraction ?? 0.2;
  if (!(val >= 0 && test >= 0 && val + test < 1))
    throw new Error(`split fractions val ${val} + test ${test} must be ≥ 0 and leave training samples`);
  const rng = createRng(o.seed ?? 0);
  const out: SampleRef[] = [];
  for (let c = 0; c < numClasses; c++) {
    const members = items.filter((s) => s.label === c);
    for (let i = members.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [members[i], members[j]] = [members[j]!, members[i]!];
    }
    const n = members.length;
    const nVal = val > 0 && n >= 3 ? Math.max(1, Math.round(n * val)) : 0;
    const nTest = test > 0 && n >= 3 ? Math.max(1, Math.round(n * test)) : 0;
    members.forEach((s, i) => {
      out.push({ ...s, split: i < nVal ? 'val' : i < nVal + nTest ? 'test' : 'train' });
    });
  }
  return out;
}

/** `DIR/<class>/*.{png,jpg,tif}`; classes are the sorted sub-folder names. */
export async function folderDataset(dir: string, o: SplitOptions = {}): Promise<ClassificationDataset> {
  let entries: string[];
  try {
    entries = (await readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch (e) {
    throw new Error(`${dir}: cannot list the class folders (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  const items: Omit<SampleRef, 'split'>[] = [];
  const classes: string[] = [];
  for (const name of entries) {
    const files = (await readdir(join(dir, name)))
      .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
      .sort();
    if (files.length === 0) continue;
    const label = classes.length;
    classes.push(name);
    for (const f of files) items.push({ path: join(dir, name, f), label });
  }
  if (classes.length < 2)
    throw new Error(`${dir}: need at least 2 class folders with images, found ${classes.length}`);
  return { source: dir, classes, samples: assignSplits(items, classes.length, o) };
}

/** Splits a CSV line on commas outside double quotes. */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '"') {
      if (quoted && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else quoted = !quoted;
    } else if (ch === ',' && !quoted) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

/** `path,label[,split]` (a header line naming `path` is skipped); paths are relative to the CSV's folder. */
export async function csvDataset(file: string, o: SplitOptions = {}): Promise<ClassificationDataset> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  const base = dirname(resolve(file));
  const rows: { path: string; region?: SampleRef['region']; label: string; split?: Split }[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    if (!raw.trim() || raw.startsWith('#')) continue;
    let f = csvFields(raw);
    if (rows.length === 0 && f[0]?.toLowerCase() === 'path') continue;
    const where = `${file}:${i + 1}`;
    // An unquoted slide region spreads its numbers over the next fields: gather x,y,w,h[,level] back.
    if (f[0]?.includes('#') && !f[0].split('#')[1]!.includes(',')) {
      const rest = f.slice(1);
      const nums = [f[0].split('#')[1]!, ...rest.slice(0, 3)];
      let tail = rest.slice(3);
      const isSplit = (v: string | undefined) => v != null && /^(train|val|validation|test)$/i.test(v);
      if (tail.length === 3 || (tail.length === 2 && !isSplit(tail[1]))) {
        nums.push(tail[0]!);
        tail = tail.slice(1);
      }
      f = [`${f[0]},${nums.slice(1).join(',')}`, ...tail];
    }
    if (f.length < 2 || f.length > 3 || !f[0] || !f[1])
      throw new Error(`${where}: expected path,label[,split], got '${raw}'`);
    const [spec, fragment] = f[0].split('#') as [string, string | undefined];
    const path = isAbsolute(spec) ? spec : join(base, spec);
    let region: SampleRef['region'];
    if (fragment !== undefined) {
      const n = fragment.split(',').map(Number);
      if (
        (n.length !== 4 && n.length !== 5) ||
        !n.every((v) => Number.isInteger(v) && v >= 0) ||
        !n[2] ||
        !n[3]
      )
        throw new Error(
          `${where}: slide region must be #x,y,w,h[,level] with non-negative integers, got #${fragment}`,
        );
      region = { x: n[0]!, y: n[1]!, width: n[2]!, height: n[3]!, level: n[4] ?? 0 };
    }
    let split: Split | undefined;
    if (f[2]) {
      const s = f[2].toLowerCase() === 'validation' ? 'val' : f[2].toLowerCase();
      if (!SPLITS.includes(s as Split))
        throw new Error(`${where}: split must be train, val or test, got '${f[2]}'`);
      split = s as Split;
    }
    rows.push({ path, region, label: f[1], split });
  }
  if (rows.length === 0) throw new Error(`${file}: no samples`);
  const names = [...new Set(rows.map((r) => r.label))];
  const numeric = names.every((n) => /^\d+$/.test(n));
  const classes = numeric
    ? Array.from({ length: Math.max(...names.map(Number)) + 1 }, (_, i) => String(i))
    : names.sort();
  if (classes.length < 2) throw new Error(`${file}: need at least 2 classes, found ${classes.length}`);
  const labelOf = (n: string) => (numeric ? Number(n) : classes.indexOf(n));
  const given = rows.filter((r) => r.split);
  const missing = rows.filter((r) => !r.split);
  const samples: SampleRef[] = [
    ...given.map((r) => ({ path: r.path, region: r.region, label: labelOf(r.label), split: r.split! })),
    ...assignSplits(
      missing.map((r) => ({ path: r.path, region: r.region, label: labelOf(r.label) })),
      classes.length,
      o,
    ),
  ];
  return { source: file, classes, samples };
}

/** A folder of class folders, or a .csv manifest. */
export async function loadClassificationDataset(
  source: string,
  o: SplitOptions = {},
): Promise<ClassificationDataset> {
  return extname(source).toLowerCase() === '.csv' ? csvDataset(source, o) : folderDataset(source, o);
}

export interface Patch {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Reads a sample's pixels (RGB), resized to size×size when `size` is given. */
export async function readSample(s: SampleRef, size?: number): Promise<Patch> {
  let img: Patch;
  if (s.region) {
    const slide = await openSlide(s.path);
    try {
      const r = await slide.readRegion({ ...s.region });
      const rgb = new Uint8Array(r.width * r.height * 3);
      // Transparent pixels (outside the slide) become white, the colour of empty glass.
      for (let i = 0; i < r.width * r.height; i++) {
        const a = r.data[i * 4 + 3]! / 255;
        for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(r.data[i * 4 + c]! * a + 255 * (1 - a));
      }
      img = { data: rgb, width: r.width, height: r.height };
    } finally {
      await slide.close();
    }
  } else {
    img = await readImageRGB(s.path);
  }
  if (size && (img.width !== size || img.height !== size)) {
    const out = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(size, size, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer();
    img = { data: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), width: size, height: size };
  }
  return img;
}

/**
 * A fingerprint of the inputs of one split: each sample's path, region, label and file content (image files)
 * or size and modification time (slides, too big to hash on every run).
 */
export async function datasetHash(samples: SampleRef[], extra = ''): Promise<string> {
  const h = createHash('sha256');
  h.update(extra);
  const fileHash = new Map<string, string>();
  for (const s of samples) {
    let key = fileHash.get(s.path);
    if (key === undefined) {
      try {
        if (s.region) {
          const st = await stat(s.path);
          key = `${st.size}:${st.mtimeMs}`;
        } else
          key = createHash('sha256')
            .update(await readFile(s.path))
            .digest('hex');
      } catch (e) {
        throw new Error(`${s.path}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
      }
      fileHash.set(s.path, key);
    }
    h.update(`${s.path}|${JSON.stringify(s.region ?? null)}|${s.label}|${s.split}|${key}\n`);
  }
  return h.digest('hex');
}
