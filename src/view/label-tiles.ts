/**
 * Coloured overlay tiles from an OME-Zarr label image, in the slide's Deep Zoom geometry so that OpenSeadragon
 * lays them exactly over the slide: each tile pixel takes the label (nearest) of the label pyramid level whose
 * pixels are no larger than the tile's, coloured with the label image's `image-label` colours (label 0 and
 * unlisted values transparent), PNG with alpha.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import * as zarr from 'zarrita';
import { FolderStore } from '../slide/zarr/store.ts';
import type { TileRect } from './deepzoom.ts';

export interface LabelClass {
  label: number;
  name: string;
  rgba: [number, number, number, number];
}

type LabelArray = zarr.Array<zarr.DataType, FolderStore>;

export class LabelTiles {
  /** Label pyramid levels, finest first: array and its size. */
  readonly #levels: { array: LabelArray; width: number; height: number }[];
  readonly classes: LabelClass[];
  readonly #colours = new Map<number, [number, number, number, number]>();
  /** Slide level-0 pixels per level-0 label pixel, per axis. */
  readonly #fx: number;
  readonly #fy: number;

  private constructor(
    levels: { array: LabelArray; width: number; height: number }[],
    classes: LabelClass[],
    fx: number,
    fy: number,
  ) {
    this.#levels = levels;
    this.classes = classes;
    for (const c of classes) this.#colours.set(c.label, c.rgba);
    this.#fx = fx;
    this.#fy = fy;
  }

  /**
   * Opens the label image at `path` (Zarr v2 or v3) for a slide of level-0 size slideWidth × slideHeight;
   * `downsample` (slide pixels per label pixel) when known exactly, else the ratio of the sizes.
   */
  static async open(
    path: string,
    slideWidth: number,
    slideHeight: number,
    downsample?: number,
  ): Promise<LabelTiles> {
    const store = new FolderStore(path);
    const group = await zarr.open(store, { kind: 'group' });
    const attrs = group.attrs as Record<string, unknown>;
    const ome = (attrs.ome as Record<string, unknown> | undefined) ?? attrs;
    const ms = (ome.multiscales as { datasets: { path: string }[] }[] | undefined)?.[0];
    if (!ms) throw new Error(`${path}: not an OME-Zarr label image (no multiscales)`);
    const levels = [];
    for (const d of ms.datasets) {
      const array = (await zarr.open(group.resolve(d.path), { kind: 'array' })) as LabelArray;
      if (array.shape.length !== 2 || array.dtype !== 'uint8')
        throw new Error(`${join(path, d.path)}: expected a 2-D uint8 label array`);
      levels.push({ array, width: array.shape[1]!, height: array.shape[0]! });
    }
    const il = (ome['image-label'] ?? {}) as {
      colors?: { 'label-value': number; rgba?: number[] }[];
      properties?: { 'label-value': number; class?: string }[];
    };
    const names = new Map((il.properties ?? []).map((p) => [p['label-value'], p.class ?? '']));
    const classes: LabelClass[] = [];
    for (const c of il.colors ?? []) {
      if (c['label-value'] === 0 || !c.rgba) continue;
      const [r, g, b, a] = c.rgba as [number, number, number, number];
      classes.push({
        label: c['label-value'],
        name: names.get(c['label-value']) || `label ${c['label-value']}`,
        rgba: [r, g, b, a],
      });
    }
    const fx = downsample ?? slideWidth / levels[0]!.width;
    const fy = downsample ?? slideHeight / levels[0]!.height;
    return new LabelTiles(levels, classes, fx, fy);
  }

  /** The overlay tile for a Deep Zoom rectangle (level-L pixels, `downsample` level-0 pixels each), as PNG. */
  async tilePng(r: TileRect): Promise<Buffer> {
    // Label pixels per tile pixel at label level 0; use the coarsest label level still at least as fine.
    const perTile = r.downsample / Math.max(this.#fx, this.#fy);
    let k = 0;
    while (k + 1 < this.#levels.length && 2 ** (k + 1) <= perTile) k++;
    const lv = this.#levels[k]!;
    const sx = r.downsample / (this.#fx * 2 ** k);
    const sy = r.downsample / (this.#fy * 2 ** k);
    const lx0 = Math.max(0, Math.floor(r.x * sx));
    const ly0 = Math.max(0, Math.floor(r.y * sy));
    const lx1 = Math.min(lv.width, Math.ceil((r.x + r.width) * sx));
    const ly1 = Math.min(lv.height, Math.ceil((r.y + r.height) * sy));
    const out = new Uint8Array(r.width * r.height * 4);
    if (lx1 > lx0 && ly1 > ly0) {
      const win = (await zarr.get(lv.array, [zarr.slice(ly0, ly1), zarr.slice(lx0, lx1)])) as {
        data: Uint8Array;
      };
      const ww = lx1 - lx0;
      for (let ty = 0; ty < r.height; ty++) {
        const ly = Math.floor((r.y + ty + 0.5) * sy);
        if (ly < ly0 || ly >= ly1) continue;
        for (let tx = 0; tx < r.width; tx++) {
          const lx = Math.floor((r.x + tx + 0.5) * sx);
          if (lx < lx0 || lx >= lx1) continue;
          const c = this.#colours.get(win.data[(ly - ly0) * ww + (lx - lx0)]!);
          if (!c) continue;
          out.set(c, (ty * r.width + tx) * 4);
        }
      }
    }
    return sharp(out, { raw: { width: r.width, height: r.height, channels: 4 } })
      .png({ compressionLevel: 3 })
      .toBuffer();
  }
}
