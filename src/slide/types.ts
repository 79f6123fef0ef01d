/**
 * The contract between slide formats (SVS/TIFF, OME-Zarr, flat images) and everything that reads them
 * (patching, training, inference). Coordinates follow OpenSlide: x, y in level-0 pixels.
 */

export interface SlideLevel {
  width: number;
  height: number;
  /** Level-0 pixels per pixel of this level (1 for level 0). */
  downsample: number;
  /** Tile size of the level's storage (chunk size for Zarr); 0 when stripped/untiled. */
  tileWidth: number;
  tileHeight: number;
}

export interface RGBAImage {
  /** Row-major RGBA, 4 bytes per pixel. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface RegionRequest {
  /** Top-left corner in level-0 pixels. */
  x: number;
  y: number;
  level: number;
  /** Size in pixels of the requested level. */
  width: number;
  height: number;
}

export interface RegionAtMppRequest {
  /** Top-left corner in level-0 pixels. */
  x: number;
  y: number;
  /** Target resolution in micrometres per pixel (requires the slide's mpp). */
  mpp: number;
  /** Output size in pixels at the target mpp. */
  width: number;
  height: number;
}

export interface Slide {
  /** The path or URL it was opened from. */
  readonly source: string;
  /** Short format name, e.g. 'aperio-svs', 'generic-tiff', 'ome-tiff', 'ome-zarr', 'image'. */
  readonly format: string;
  readonly levels: readonly SlideLevel[];
  /** Micrometres per pixel at level 0, or null when unknown. */
  readonly mpp: { x: number; y: number } | null;
  readonly objectivePower: number | null;
  /** Vendor properties, OpenSlide-style keys where they exist (e.g. 'openslide.mpp-x', 'aperio.AppMag'). */
  readonly properties: Readonly<Record<string, string>>;
  /** Names of associated images present: 'thumbnail', 'label', 'macro'. */
  readonly associatedImages: readonly string[];
  readAssociatedImage(name: string): Promise<RGBAImage>;
  /** OpenSlide's read_region: RGBA, alpha 0 outside the slide. */
  readRegion(req: RegionRequest): Promise<RGBAImage>;
  /** Best level for the downsample, then resampled to the requested mpp. */
  readRegionAtMpp(req: RegionAtMppRequest): Promise<RGBAImage>;
  /** OpenSlide's get_best_level_for_downsample. */
  getBestLevelForDownsample(downsample: number): number;
  /** The whole slide scaled to fit in maxSize × maxSize, aspect kept. */
  thumbnail(maxSize: number): Promise<RGBAImage>;
  close(): Promise<void>;
}

/**
 * What a format reader provides; `PyramidSlide` (src/slide/pyramid.ts) wraps it into a `Slide` with
 * OpenSlide's semantics (level-0 coordinates, clipping, transparent outside, best level, mpp reads).
 */
export interface PyramidSource {
  readonly source: string;
  readonly format: string;
  readonly levels: readonly SlideLevel[];
  readonly mpp: { x: number; y: number } | null;
  readonly objectivePower: number | null;
  readonly properties: Readonly<Record<string, string>>;
  readonly associatedImages: readonly string[];
  readAssociatedImage(name: string): Promise<RGBAImage>;
  /**
   * Opaque RGBA pixels (alpha 255) of a rectangle in the level's own pixel coordinates.
   * Callers guarantee 0 <= x, y and x + width <= level width, y + height <= level height.
   */
  readLevel(level: number, x: number, y: number, width: number, height: number): Promise<RGBAImage>;
  close(): Promise<void>;
}
