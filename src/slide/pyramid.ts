/**
 * OpenSlide semantics over any PyramidSource: level-0 coordinates, transparent outside the slide,
 * OpenSlide 3.4.1's best-level rule and its sub-pixel placement of lower levels, mpp reads, thumbnails.
 */
import { asSlideError, SlideError } from './errors.ts';
import { bilinearShift, resampleArea } from './resample.ts';
import type {
  PyramidSource,
  RegionAtMppRequest,
  RegionRequest,
  RGBAImage,
  Slide,
  SlideLevel,
} from './types.ts';

/** Largest region we allocate (RGBA bytes = 4x); bigger requests are refused, not attempted. */
export const MAX_REGION_PIXELS = 2 ** 28;
/** OpenSlide paints large regions in 4096-pixel squares, each starting at a truncated level-0 offset. */
const CHUNK = 4096;

export class PyramidSlide implements Slide {
  readonly source: string;
  readonly format: string;
  readonly levels: readonly SlideLevel[];
  readonly mpp: { x: number; y: number } | null;
  readonly objectivePower: number | null;
  readonly properties: Readonly<Record<string, string>>;
  readonly associatedImages: readonly string[];

  constructor(
    readonly pyramid: PyramidSource,
    private readonly onClose?: () => Promise<void>,
  ) {
    this.source = pyramid.source;
    this.format = pyramid.format;
    this.levels = pyramid.levels;
    this.mpp = pyramid.mpp;
    this.objectivePower = pyramid.objectivePower;
    this.properties = pyramid.properties;
    this.associatedImages = pyramid.associatedImages;
  }

  readAssociatedImage(name: string): Promise<RGBAImage> {
    return this.guard(this.pyramid.readAssociatedImage(name));
  }

  /** Every read ends as a one-line SlideError naming the slide, whatever the source threw. */
  private async guard<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      throw asSlideError(this.source, err);
    }
  }

  getBestLevelForDownsample(downsample: number): number {
    const ds = this.levels.map((l) => l.downsample);
    if (downsample < ds[0]) return 0;
    for (let i = 1; i < ds.length; i++) if (downsample < ds[i]) return i - 1;
    return ds.length - 1;
  }

  readRegion(req: RegionRequest): Promise<RGBAImage> {
    return this.guard(this.readRegionUnguarded(req));
  }

  private async readRegionUnguarded(req: RegionRequest): Promise<RGBAImage> {
    const { x, y, level, width, height } = req;
    for (const [k, v] of Object.entries({ x, y, level, width, height })) {
      if (!Number.isSafeInteger(v))
        throw new SlideError(this.source, `readRegion: ${k} must be an integer (got ${v})`);
    }
    if (width < 0 || height < 0)
      throw new SlideError(this.source, `readRegion: negative size ${width}x${height}`);
    if (level < 0 || level >= this.levels.length) {
      throw new SlideError(this.source, `readRegion: no level ${level} (slide has ${this.levels.length})`);
    }
    if (width * height > MAX_REGION_PIXELS) {
      throw new SlideError(
        this.source,
        `readRegion: ${width}x${height} is too large (limit ${MAX_REGION_PIXELS} pixels)`,
      );
    }
    const lv = this.levels[level];
    const ds = lv.downsample;
    const fx = x / ds;
    const fy = y / ds;
    if (
      width <= CHUNK &&
      height <= CHUNK &&
      Number.isInteger(fx) &&
      Number.isInteger(fy) &&
      fx >= 0 &&
      fy >= 0 &&
      fx + width <= lv.width &&
      fy + height <= lv.height
    ) {
      // Common case: aligned and inside the level; the source's pixels are the answer, no second copy.
      return this.pyramid.readLevel(level, fx, fy, width, height);
    }
    const out = new Uint8Array(width * height * 4);
    const jobs: Promise<void>[] = [];
    for (let row = 0; row * CHUNK < height; row++) {
      for (let col = 0; col * CHUNK < width; col++) {
        const sx = x + Math.trunc(col * CHUNK * ds);
        const sy = y + Math.trunc(row * CHUNK * ds);
        const sw = Math.min(width - col * CHUNK, CHUNK);
        const sh = Math.min(height - row * CHUNK, CHUNK);
        jobs.push(this.paint(out, width, col * CHUNK, row * CHUNK, sx, sy, level, sw, sh));
      }
    }
    await Promise.all(jobs);
    return { data: out, width, height };
  }

  /** Paints one chunk as OpenSlide's read_region does, into `out` at (ox, oy). */
  private async paint(
    out: Uint8Array,
    outWidth: number,
    ox: number,
    oy: number,
    x: number,
    y: number,
    level: number,
    w: number,
    h: number,
  ): Promise<void> {
    const lv = this.levels[level];
    const ds = lv.downsample;
    // Negative coordinates: OpenSlide skips whole level pixels (truncated) and starts at 0.
    if (x < 0) {
      const tx = Math.trunc(-x / ds);
      ox += tx;
      w -= tx;
      x = 0;
    }
    if (y < 0) {
      const ty = Math.trunc(-y / ds);
      oy += ty;
      h -= ty;
      y = 0;
    }
    if (w <= 0 || h <= 0) return;
    const fx = x / ds;
    const fy = y / ds;
    const ix = Math.floor(fx);
    const iy = Math.floor(fy);
    const shifted = Math.floor((fx - ix) * 128) > 0 || Math.floor((fy - iy) * 128) > 0;
    // Source window in level pixels: one extra column/row when interpolating.
    const need = shifted ? 1 : 0;
    const x1 = Math.min(ix + w + need, lv.width);
    const y1 = Math.min(iy + h + need, lv.height);
    if (x1 <= ix || y1 <= iy) return;
    const win = await this.pyramid.readLevel(level, ix, iy, x1 - ix, y1 - iy);
    if (!shifted) {
      blit(win, out, outWidth, ox, oy);
      return;
    }
    // Pad the window to (w+1) x (h+1) with transparent pixels beyond the level's edge.
    const padded = { data: new Uint8Array((w + 1) * (h + 1) * 4), width: w + 1, height: h + 1 };
    blit(win, padded.data, w + 1, 0, 0);
    const pixels = bilinearShift(padded, fx - ix, fy - iy, w, h);
    blit({ data: pixels, width: w, height: h }, out, outWidth, ox, oy);
  }

  async readRegionAtMpp(req: RegionAtMppRequest): Promise<RGBAImage> {
    if (!this.mpp)
      throw new SlideError(this.source, 'readRegionAtMpp: the slide has no mpp (resolution unknown)');
    if (!(req.mpp > 0)) throw new SlideError(this.source, `readRegionAtMpp: invalid mpp ${req.mpp}`);
    for (const [k, v] of Object.entries({ width: req.width, height: req.height })) {
      if (!Number.isSafeInteger(v) || v < 0)
        throw new SlideError(this.source, `readRegionAtMpp: ${k} must be a non-negative integer (got ${v})`);
    }
    if (req.width * req.height > MAX_REGION_PIXELS) {
      throw new SlideError(
        this.source,
        `readRegionAtMpp: ${req.width}x${req.height} is too large (limit ${MAX_REGION_PIXELS} pixels)`,
      );
    }
    const dsx = req.mpp / this.mpp.x;
    const dsy = req.mpp / this.mpp.y;
    const level = this.getBestLevelForDownsample(Math.min(dsx, dsy));
    const lds = this.levels[level].downsample;
    const sx = dsx / lds;
    const sy = dsy / lds;
    const w = Math.ceil(req.width * sx);
    const h = Math.ceil(req.height * sy);
    const region = await this.readRegion({ x: req.x, y: req.y, level, width: w, height: h });
    if (w === req.width && h === req.height) return region;
    return {
      data: resampleArea(region, sx, sy, req.width, req.height),
      width: req.width,
      height: req.height,
    };
  }

  thumbnail(maxSize: number): Promise<RGBAImage> {
    return this.guard(this.thumbnailUnguarded(maxSize));
  }

  private async thumbnailUnguarded(maxSize: number): Promise<RGBAImage> {
    if (!(Number.isInteger(maxSize) && maxSize > 0))
      throw new SlideError(this.source, `thumbnail: invalid size ${maxSize}`);
    const { width: w0, height: h0 } = this.levels[0];
    const downsample = Math.max(w0 / maxSize, h0 / maxSize);
    const level = this.getBestLevelForDownsample(downsample);
    const lv = this.levels[level];
    const scale = Math.min(maxSize / w0, maxSize / h0);
    const tw = Math.max(1, Math.round(w0 * scale));
    const th = Math.max(1, Math.round(h0 * scale));
    if (lv.width * lv.height > MAX_REGION_PIXELS) {
      throw new SlideError(
        this.source,
        `thumbnail: smallest usable level (${lv.width}x${lv.height}) is too large to read`,
      );
    }
    const full = await this.pyramid.readLevel(level, 0, 0, lv.width, lv.height);
    if (full.width === tw && full.height === th) return full;
    return { data: resampleArea(full, lv.width / tw, lv.height / th, tw, th), width: tw, height: th };
  }

  async close(): Promise<void> {
    await this.pyramid.close();
    await this.onClose?.();
  }
}

function blit(src: RGBAImage, dst: Uint8Array, dstWidth: number, ox: number, oy: number): void {
  const span = src.width * 4;
  for (let r = 0; r < src.height; r++) {
    dst.set(src.data.subarray(r * span, (r + 1) * span), ((oy + r) * dstWidth + ox) * 4);
  }
}
