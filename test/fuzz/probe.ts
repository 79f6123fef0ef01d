/**
 * Opens and reads one slide (or each path given on stdin with --serve, one per line) and answers with one JSON
 * line per slide: { ok: true, hash, levels } or { ok: false, error }, plus the peak RSS so far. Used by the fuzz
 * suite and the hostile-input tests as the "long-lived process that must survive": every slide error is caught
 * and reported; anything that escapes (an unhandled rejection, a crash) ends the process, which is the failure.
 */
import { createHash } from 'node:crypto';
import { resourceUsage } from 'node:process';
import { createInterface } from 'node:readline';
import { openSlide } from '../../src/slide/index.ts';

/** Edge of the squares read per level (levels up to twice this edge squared are read whole). */
const READ_EDGE = 1024;

export interface ProbeAnswer {
  ok: boolean;
  error?: string;
  /** sha256 of the pixels read (levels in order), when ok. */
  hash?: string;
  levels?: string;
  /** Peak resident set size of the probe process so far, in MiB. */
  peakMiB: number;
}

export async function probe(path: string): Promise<ProbeAnswer> {
  try {
    const slide = await openSlide(path);
    try {
      const hash = createHash('sha256');
      const shapes: string[] = [];
      for (let level = 0; level < Math.min(slide.levels.length, 4); level++) {
        const l = slide.levels[level];
        const ds = l.downsample;
        // Small levels whole; big ones at the top-left corner and the centre (level-0 coordinates).
        const windows =
          l.width * l.height <= READ_EDGE * READ_EDGE * 4
            ? [[0, 0, l.width, l.height]]
            : [
                [0, 0, Math.min(l.width, READ_EDGE), Math.min(l.height, READ_EDGE)],
                [
                  Math.floor(((l.width - READ_EDGE) / 2) * ds),
                  Math.floor(((l.height - READ_EDGE) / 2) * ds),
                  READ_EDGE,
                  READ_EDGE,
                ],
              ];
        for (const [x, y, width, height] of windows) {
          const img = await slide.readRegion({ x, y, level, width, height });
          hash.update(img.data);
        }
        shapes.push(`${l.width}x${l.height}@${ds.toFixed(3)}`);
      }
      for (const name of slide.associatedImages) {
        const img = await slide.readAssociatedImage(name);
        hash.update(img.data);
        shapes.push(`${name} ${img.width}x${img.height}`);
      }
      return { ok: true, hash: hash.digest('hex'), levels: shapes.join(' '), peakMiB: peakMiB() };
    } finally {
      await slide.close();
    }
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err), peakMiB: peakMiB() };
  }
}

function peakMiB(): number {
  return Math.round(resourceUsage().maxRSS / 1024);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--serve') {
    const lines = createInterface({ input: process.stdin });
    for await (const line of lines) {
      if (line.trim() === '') continue;
      process.stdout.write(`${JSON.stringify(await probe(line.trim()))}\n`);
    }
    return;
  }
  for (const path of args) process.stdout.write(`${JSON.stringify(await probe(path))}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
