/** Pictures for people: tissue overlays, patch contact sheets and patch-location overviews, as PNG via sharp. */
import sharp from 'sharp';
import { classColour } from '../core/palette.ts';
import type { RGBAImage } from '../slide/types.ts';
import type { Patch } from './stream.ts';
import type { TissueMask } from './tissue.ts';

/** The mask as a black/white PNG. */
export async function writeMaskPng(tissue: TissueMask, path: string): Promise<void> {
  const grey = Buffer.alloc(tissue.mask.length);
  for (let i = 0; i < grey.length; i++) grey[i] = tissue.mask[i] ? 255 : 0;
  await sharp(grey, { raw: { width: tissue.width, height: tissue.height, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(path);
}

/** The low-resolution view with tissue tinted green and the mask outline drawn in dark green. */
export async function writeTissueOverlayPng(
  view: RGBAImage,
  tissue: TissueMask,
  path: string,
): Promise<void> {
  const { width, height, mask } = tissue;
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const a = view.data[i * 4 + 3] / 255;
    let [r, g, b] = [0, 1, 2].map((c) => view.data[i * 4 + c] * a + 255 * (1 - a));
    if (mask[i]) {
      const x = i % width;
      const y = (i - x) / width;
      const edge =
        x === 0 ||
        y === 0 ||
        x === width - 1 ||
        y === height - 1 ||
        !mask[i - 1] ||
        !mask[i + 1] ||
        !mask[i - width] ||
        !mask[i + width];
      if (edge) [r, g, b] = [0, 110, 0];
      else [r, g, b] = [r * 0.65, g * 0.65 + 255 * 0.35, b * 0.65];
    }
    rgb[i * 3] = r;
    rgb[i * 3 + 1] = g;
    rgb[i * 3 + 2] = b;
  }
  await sharp(rgb, { raw: { width, height, channels: 3 } })
    .png()
    .toFile(path);
}

/** Patch pixels with its mask, if any, blended in (40%) so alignment can be checked by eye. */
function patchRgb(p: Patch): Buffer {
  const out = Buffer.from(p.image);
  if (!p.mask) return out;
  for (let i = 0; i < p.mask.length; i++) {
    const v = p.mask[i];
    if (!v) continue;
    const c = classColour(v);
    for (let k = 0; k < 3; k++) out[i * 3 + k] = out[i * 3 + k] * 0.6 + c[k] * 0.4;
  }
  return out;
}

/** Patches tiled row by row (each scaled to `cell` px), 4 px gaps on grey. */
export async function writeContactSheet(
  patches: Patch[],
  path: string,
  columns = 8,
  cell = 128,
): Promise<void> {
  if (patches.length === 0) throw new Error(`${path}: no patches to draw`);
  const gap = 4;
  const cols = Math.min(columns, patches.length);
  const rows = Math.ceil(patches.length / cols);
  const tiles = await Promise.all(
    patches.map((p) =>
      sharp(patchRgb(p), { raw: { width: p.width, height: p.height, channels: 3 } })
        .resize({ width: cell, height: cell, fit: 'contain', background: '#808080' })
        .png()
        .toBuffer(),
    ),
  );
  await sharp({
    create: {
      width: cols * (cell + gap) + gap,
      height: rows * (cell + gap) + gap,
      channels: 3,
      background: '#808080',
    },
  })
    .composite(
      tiles.map((input, i) => ({
        input,
        left: gap + (i % cols) * (cell + gap),
        top: gap + Math.floor(i / cols) * (cell + gap),
      })),
    )
    .png()
    .toFile(path);
}

/** The slide thumbnail with each patch's level-0 footprint drawn as a rectangle. */
export async function writePatchOverview(
  thumbnail: RGBAImage,
  slideWidth: number,
  patches: Patch[],
  path: string,
): Promise<void> {
  const s = thumbnail.width / slideWidth;
  const rects = patches
    .map((p) => {
      const w = p.width * p.downsample * s;
      const h = p.height * p.downsample * s;
      return `<rect x="${(p.x * s).toFixed(1)}" y="${(p.y * s).toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}"/>`;
    })
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${thumbnail.width}" height="${thumbnail.height}"><g fill="none" stroke="#0050ff" stroke-width="1.5">${rects}</g></svg>`;
  await sharp(Buffer.from(thumbnail.data), {
    raw: { width: thumbnail.width, height: thumbnail.height, channels: 4 },
  })
    .flatten({ background: '#ffffff' })
    .composite([{ input: Buffer.from(svg) }])
    .png()
    .toFile(path);
}
