/**
 * What `slideseg view` serves: the slides named on the command line, or every slide an inference output folder
 * (one `slideseg infer` run, or a cohort's folder of runs) holds, with its labels, polygons and summary.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';

export interface ViewSlide {
  /** URL name: letters, digits, '.', '_', '-' (unique among the served slides). */
  name: string;
  /** What the tiles are read from: the slide file/URL, or the inference output's OME-Zarr image. */
  slide: string;
  /** OME-Zarr label image (labels/segmentation) of an inference run. */
  labels?: string;
  geojson?: string;
  summary?: Record<string, unknown>;
  /**
   * Level-0 slide pixels per level-0 label pixel when known exactly (the inference run's downsample, when the tiles
   * come from the original slide); otherwise the viewer derives it from the two sizes.
   */
  labelsDownsample?: number;
}

/** Name of a slide: its file name without extension(s), reduced to URL-safe characters. */
export function viewName(path: string): string {
  let b = basename(path.split(/[?#]/)[0]!.replace(/[/\\]+$/, ''));
  for (let i = 0; i < 2; i++) {
    const e = extname(b);
    if (e && /^\.(svs|tif|tiff|ome|zarr|ndpi|png|jpe?g|mrxs|scn|bif|vms)$/i.test(e))
      b = b.slice(0, -e.length);
  }
  const name = b.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return name || 'slide';
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The inference summaries in a folder and in its direct sub-folders (a cohort writes one folder per slide). */
async function summariesIn(folder: string): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(folder, { withFileTypes: true });
  for (const e of entries) {
    if (e.isFile() && e.name.endsWith('.summary.json')) found.push(join(folder, e.name));
  }
  for (const e of entries) {
    if (!e.isDirectory() || e.name.endsWith('.zarr') || e.name.startsWith('.')) continue;
    for (const f of await readdir(join(folder, e.name))) {
      if (f.endsWith('.summary.json')) found.push(join(folder, e.name, f));
    }
  }
  return found.sort();
}

/** A served slide from an inference summary: the original slide when it is still there, else the output image. */
async function fromSummary(path: string): Promise<ViewSlide> {
  let summary: Record<string, unknown>;
  try {
    summary = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not an inference summary: ${(err as Error).message}`);
  }
  const outputs = (summary.outputs ?? {}) as Record<string, string | null | undefined>;
  const folder = dirname(path);
  // Outputs are moved around with their folder: trust the names, not the absolute paths written at the time.
  const local = (p: string | null | undefined) => (p ? join(folder, basename(p)) : undefined);
  const image = local(outputs.image) ?? join(folder, `${String(summary.name)}.ome.zarr`);
  const labels = outputs.labels ? join(image, 'labels', basename(outputs.labels)) : undefined;
  const geojson = local(outputs.geojson);
  const original = typeof summary.slide === 'string' ? summary.slide : undefined;
  const slide =
    original && (/^https?:\/\//.test(original) || (await exists(original)))
      ? original
      : (await isDir(join(image, '0')))
        ? image
        : original;
  if (!slide) throw new Error(`${path}: the summary names no slide and the output has no image`);
  const { mpp, slideMpp } = summary as { mpp?: unknown; slideMpp?: unknown };
  const exact = slide === original && typeof mpp === 'number' && typeof slideMpp === 'number';
  return {
    labelsDownsample: exact ? (mpp as number) / (slideMpp as number) : undefined,
    name: viewName(String(summary.name ?? path.replace(/\.summary\.json$/, ''))),
    slide,
    labels: labels && (await exists(labels)) ? labels : undefined,
    geojson: geojson && (await exists(geojson)) ? geojson : undefined,
    summary,
  };
}

/** The first label image an OME-Zarr lists under labels/ (NGFF 0.4 or 0.5), if any. */
async function zarrLabels(path: string): Promise<string | undefined> {
  const read = async (f: string) => JSON.parse(await readFile(join(path, 'labels', f), 'utf8'));
  const listing = await read('.zattrs').catch(() =>
    read('zarr.json')
      .then((d) => d?.attributes?.ome ?? d?.attributes)
      .catch(() => null),
  );
  const first = Array.isArray(listing?.labels) ? listing.labels[0] : undefined;
  // Listed names are folder names inside labels/; anything else is not followed.
  if (typeof first !== 'string' || !/^[A-Za-z0-9._-]+$/.test(first) || first.startsWith('.'))
    return undefined;
  const labels = join(path, 'labels', first);
  return (await isDir(labels)) ? labels : undefined;
}

/** Resolves the command-line inputs (slides, or inference output folders) into the served slides. */
export async function collectSlides(inputs: readonly string[]): Promise<ViewSlide[]> {
  const slides: ViewSlide[] = [];
  for (const input of inputs) {
    const isUrl = /^https?:\/\//.test(input);
    const path = isUrl || isAbsolute(input) ? input : resolve(input);
    if (!isUrl && !(await exists(path))) throw new Error(`${input}: no such file or folder`);
    if (!isUrl && (await isDir(path)) && !/\.zarr\/?$/i.test(path)) {
      const summaries = await summariesIn(path);
      if (summaries.length === 0) {
        // A folder without summaries may still be an OME-Zarr without the .zarr suffix.
        if (await exists(join(path, '.zattrs')).then((a) => a || exists(join(path, 'zarr.json')))) {
          slides.push({ name: viewName(path), slide: path });
          continue;
        }
        throw new Error(`${input}: folder holds no slide and no inference output (*.summary.json)`);
      }
      for (const s of summaries) slides.push(await fromSummary(s));
      continue;
    }
    // An OME-Zarr with labels (e.g. an inference output's image) shows them as the overlay.
    const labels = !isUrl && /\.zarr\/?$/i.test(path) ? await zarrLabels(path) : undefined;
    slides.push({ name: viewName(path), slide: path, labels });
  }
  // Unique names: a second "x" becomes "x-2".
  const seen = new Map<string, number>();
  for (const s of slides) {
    const n = (seen.get(s.name) ?? 0) + 1;
    seen.set(s.name, n);
    if (n > 1) s.name = `${s.name}-${n}`;
  }
  return slides;
}
