/**
 * Checks an array's Zarr metadata before zarrita or the reader use it: shapes and chunk shapes are arrays of
 * integers within limits (a zero chunk size would loop forever, a shape beyond 2^53 never finishes), chunks fit a
 * decode budget, and a v3 codec chain has the one array-to-bytes codec the spec requires.
 */

/** Longest axis we accept (OpenSlide and libtiff use 32-bit sizes too). */
export const MAX_AXIS = 2 ** 31 - 1;
/** Largest decoded chunk (bytes); real slides use 0.25-16 MiB. */
export const MAX_CHUNK_BYTES = 128 * 1024 * 1024;

export const DTYPE_BYTES: Record<string, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  uint64: 8,
  int64: 8,
  float64: 8,
};

/** v3 codecs that turn an array into bytes (exactly one must be in the chain). */
const ARRAY_TO_BYTES = new Set(['bytes', 'sharding_indexed']);

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Throws unless `value` is a list of `rank` (when given) integers in [min, MAX_AXIS]. */
function integerList(value: unknown, what: string, where: string, min: number, rank?: number): number[] {
  if (!Array.isArray(value) || value.length === 0)
    throw new Error(`${where}: ${what} must be a non-empty list of integers, got ${JSON.stringify(value)}`);
  if (rank !== undefined && value.length !== rank)
    throw new Error(`${where}: ${what} has ${value.length} entries for ${rank} dimensions`);
  for (const v of value) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > MAX_AXIS) {
      throw new Error(
        `${where}: ${what} ${JSON.stringify(value)} holds ${JSON.stringify(v)}: each must be an integer in ${min}..${MAX_AXIS}`,
      );
    }
  }
  return value as number[];
}

function checkGeometry(shape: unknown, chunks: unknown, dtype: string, where: string): void {
  const s = integerList(shape, 'shape', where, 0);
  const c = integerList(chunks, 'chunk shape', where, 1, s.length);
  let elements = 1;
  for (const v of s) elements *= v;
  if (!Number.isSafeInteger(elements))
    throw new Error(`${where}: shape ${JSON.stringify(s)} holds more than 2^53 elements`);
  const bytes = c.reduce((p, v) => p * v, 1) * (DTYPE_BYTES[dtype] ?? 8);
  if (bytes > MAX_CHUNK_BYTES) {
    throw new Error(
      `${where}: chunks of ${JSON.stringify(c)} ${dtype} take ${Math.round(bytes / 2 ** 20)} MiB each (limit ${MAX_CHUNK_BYTES / 2 ** 20} MiB)`,
    );
  }
}

/** Zarr v2 `.zarray`; `dtype` is the numeric type it maps to. */
export function checkV2ArrayMeta(meta: Json, dtype: string, where: string): void {
  checkGeometry(meta.shape, meta.chunks, dtype, where);
  if (
    meta.dimension_separator !== undefined &&
    meta.dimension_separator !== '.' &&
    meta.dimension_separator !== '/'
  )
    throw new Error(
      `${where}: .zarray dimension_separator must be "." or "/", got ${JSON.stringify(meta.dimension_separator)}`,
    );
  if (meta.order !== undefined && meta.order !== 'C' && meta.order !== 'F')
    throw new Error(`${where}: .zarray order must be "C" or "F", got ${JSON.stringify(meta.order)}`);
  if (meta.compressor !== null && meta.compressor !== undefined) {
    if (!isObject(meta.compressor) || typeof meta.compressor.id !== 'string')
      throw new Error(`${where}: .zarray compressor must be null or an object with an "id"`);
  }
  if (meta.filters !== null && meta.filters !== undefined) {
    if (!Array.isArray(meta.filters) || !meta.filters.every((f) => isObject(f) && typeof f.id === 'string'))
      throw new Error(`${where}: .zarray filters must be null or a list of objects with an "id"`);
  }
}

/** Zarr v3 array `zarr.json`. */
export function checkV3ArrayMeta(meta: Json, where: string): void {
  const dtype = String(meta.data_type);
  const grid = meta.chunk_grid;
  if (!isObject(grid) || grid.name !== 'regular' || !isObject(grid.configuration))
    throw new Error(`${where}: zarr.json chunk_grid must be "regular" with a chunk_shape`);
  checkGeometry(meta.shape, grid.configuration.chunk_shape, dtype, where);
  checkCodecs(meta.codecs, grid.configuration.chunk_shape as number[], where);
}

function checkCodecs(codecs: unknown, chunkShape: number[], where: string): void {
  if (!Array.isArray(codecs) || !codecs.every((c) => isObject(c) && typeof c.name === 'string'))
    throw new Error(`${where}: zarr.json codecs must be a list of {"name": ...} objects`);
  const toBytes = (codecs as Json[]).filter((c) => ARRAY_TO_BYTES.has(c.name as string));
  if (toBytes.length !== 1) {
    throw new Error(
      `${where}: zarr.json codecs [${(codecs as Json[]).map((c) => c.name).join(', ')}] must hold exactly one array-to-bytes codec (bytes or sharding_indexed)`,
    );
  }
  const codec = toBytes[0];
  if (codec.name !== 'sharding_indexed') return;
  const config = isObject(codec.configuration) ? codec.configuration : {};
  const inner = integerList(config.chunk_shape, 'shard inner chunk shape', where, 1, chunkShape.length);
  inner.forEach((v, i) => {
    if (chunkShape[i] % v !== 0)
      throw new Error(
        `${where}: shard shape ${JSON.stringify(chunkShape)} is not a multiple of the inner chunk shape ${JSON.stringify(inner)}`,
      );
  });
  checkCodecs(config.codecs, inner, where);
}
