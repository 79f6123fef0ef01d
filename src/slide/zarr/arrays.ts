/**
 * Opens the arrays of a multiscale with zarrita after checking, from their metadata, that we can decode them:
 * a numeric dtype and codecs that zarrita's registry knows (it loads codecs lazily, so an unknown one would
 * otherwise only fail at the first tile read, far from the cause).
 */
import * as zarr from 'zarrita';
import type { ZarrNumericType } from './display.ts';
import { SUPPORTED_DTYPES } from './display.ts';
import type { NgffImage } from './metadata.ts';
import type { MemoStore } from './store.ts';
import { checkV2ArrayMeta, checkV3ArrayMeta, DTYPE_BYTES } from './validate.ts';

export type NumericArray = zarr.Array<ZarrNumericType, MemoStore>;

const V2_DTYPES: Record<string, ZarrNumericType> = {
  u1: 'uint8',
  i1: 'int8',
  u2: 'uint16',
  i2: 'int16',
  u4: 'uint32',
  i4: 'int32',
  u8: 'uint64',
  i8: 'int64',
  f4: 'float32',
  f8: 'float64',
};

/** v2 filters zarrita maps onto native v3 codecs rather than registry entries. */
const V2_BUILTIN_FILTERS = new Set(['fixedscaleoffset']);

export async function openLevelArrays(
  store: MemoStore,
  source: string,
  image: NgffImage,
): Promise<NumericArray[]> {
  const root = zarr.root(store);
  const arrays: NumericArray[] = [];
  for (const dataset of image.datasets) {
    const path = `${image.groupPath}${dataset.path}`.replace(/\/+$/, '');
    const where = `${source}/${path}`;
    if (image.zarrFormat === 2) await checkV2(store, path, where);
    else await checkV3(store, path, where);
    await registerChunkCheck(store, path, image.zarrFormat);
    await limitChunkBodies(store, path, image.zarrFormat);
    let array: zarr.Array<zarr.DataType, MemoStore>;
    try {
      array =
        image.zarrFormat === 2
          ? await zarr.open.v2(root.resolve(path), { kind: 'array', attrs: false })
          : await zarr.open.v3(root.resolve(path), { kind: 'array' });
    } catch (err) {
      throw new Error(`${where}: cannot open the array: ${(err as Error).message}`);
    }
    if (array.shape.length !== image.axes.length) {
      throw new Error(
        `${where}: array has ${array.shape.length} dimensions but the multiscales axes are ${image.axes.map((a) => a.name).join(',')}`,
      );
    }
    arrays.push(array as NumericArray);
  }
  return arrays;
}

async function checkV2(store: MemoStore, path: string, where: string): Promise<void> {
  const meta = await store.json(`${path}/.zarray`);
  if (!meta)
    throw new Error(`${where}: missing .zarray (the multiscales dataset "${path}" is not a Zarr v2 array)`);
  const dtype = String(meta.dtype);
  const match = /^[<>|]([a-z]\d+)$/.exec(dtype);
  if (!match || !V2_DTYPES[match[1]]) {
    throw new Error(`${where}: unsupported dtype ${dtype} (supported: ${SUPPORTED_DTYPES.join(', ')})`);
  }
  checkV2ArrayMeta(meta, V2_DTYPES[match[1]], where);
  const codecIds: string[] = [];
  const filters = Array.isArray(meta.filters) ? meta.filters : [];
  for (const f of filters) codecIds.push(String((f as { id?: unknown }).id));
  const compressor = meta.compressor as { id?: unknown } | null | undefined;
  if (compressor) codecIds.push(String(compressor.id));
  for (const id of codecIds) {
    const bare = id.replace(/^numcodecs\./, '');
    if (!V2_BUILTIN_FILTERS.has(bare) && !zarr.registry.has(`numcodecs.${bare}`)) {
      throw new Error(`${where}: unsupported codec "${id}" (known: ${knownCodecs()})`);
    }
  }
}

async function checkV3(store: MemoStore, path: string, where: string): Promise<void> {
  const meta = await store.json(`${path}/zarr.json`);
  if (!meta)
    throw new Error(`${where}: missing zarr.json (the multiscales dataset "${path}" is not a Zarr v3 array)`);
  if (meta.node_type !== 'array')
    throw new Error(`${where}: zarr.json describes a ${String(meta.node_type)}, not an array`);
  const dtype = String(meta.data_type);
  if (!SUPPORTED_DTYPES.includes(dtype)) {
    throw new Error(`${where}: unsupported dtype ${dtype} (supported: ${SUPPORTED_DTYPES.join(', ')})`);
  }
  checkV3ArrayMeta(meta, where);
  const check = (codecs: unknown): void => {
    if (!Array.isArray(codecs)) return;
    for (const c of codecs as { name?: unknown; configuration?: Record<string, unknown> }[]) {
      const name = String(c.name);
      if (name === 'sharding_indexed') {
        check(c.configuration?.codecs);
        check(c.configuration?.index_codecs);
      } else if (!zarr.registry.has(name)) {
        throw new Error(`${where}: unsupported codec "${name}" (known: ${knownCodecs()})`);
      }
    }
  };
  check(meta.codecs);
}

/**
 * Raw chunks must have exactly the chunk's byte size (9 bytes of a 2x2 uint16 chunk would otherwise read as 4
 * values). Blosc frames carry their compressed and uncompressed sizes (16-byte header): a truncated or padded frame, or one
 * that would expand to other than a chunk's bytes, is refused before the Blosc decoder runs on it (it may
 * otherwise return garbage of the right length).
 */
async function registerChunkCheck(store: MemoStore, path: string, format: 2 | 3): Promise<void> {
  const meta = await store.json(format === 2 ? `${path}/.zarray` : `${path}/zarr.json`);
  if (!meta) return;
  let blosc = false;
  let plain = true; // the Blosc frame holds the chunk itself (no filter or codec changing its size)
  let raw = false; // the chunk is stored as its bytes, nothing else
  let chunkElements = 0;
  let itemBytes = 0;
  if (format === 2) {
    const compressor = meta.compressor as { id?: unknown } | null;
    blosc = compressor?.id === 'blosc';
    plain = !Array.isArray(meta.filters) || meta.filters.length === 0;
    raw = !compressor && plain;
    chunkElements = (meta.chunks as number[]).reduce((p, v) => p * v, 1);
    itemBytes = DTYPE_BYTES[V2_DTYPES[String(meta.dtype).slice(1)]] ?? 0;
  } else {
    const codecs = (meta.codecs as { name: string }[]) ?? [];
    blosc = codecs.some((c) => c.name === 'blosc');
    plain = codecs.length === 2 && codecs[0].name === 'bytes' && codecs[1].name === 'blosc';
    raw = codecs.every((c) => c.name === 'bytes' || c.name === 'transpose');
    const grid = meta.chunk_grid as { configuration: { chunk_shape: number[] } };
    chunkElements = grid.configuration.chunk_shape.reduce((p, v) => p * v, 1);
    itemBytes = DTYPE_BYTES[String(meta.data_type)] ?? 0;
  }
  if (raw && itemBytes > 0) {
    // A raw chunk is exactly its elements' bytes: a short or long one is not a chunk of this array.
    const bytes = chunkElements * itemBytes;
    store.checkChunks(`/${path}/`, (key, data) => {
      if (data.length !== bytes)
        throw new Error(`chunk ${key}: ${data.length} bytes where an uncompressed chunk holds ${bytes}`);
    });
    return;
  }
  if (!blosc) return;
  const expected = plain && itemBytes > 0 ? chunkElements * itemBytes : null;
  store.checkChunks(`/${path}/`, (key, bytes) => {
    if (bytes.length < 16)
      throw new Error(`chunk ${key}: ${bytes.length} bytes are too few for a Blosc frame`);
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const nbytes = v.getUint32(4, true);
    const cbytes = v.getUint32(12, true);
    if (cbytes !== bytes.length)
      throw new Error(
        `chunk ${key}: Blosc frame says ${cbytes} bytes but the chunk has ${bytes.length} (truncated or corrupt)`,
      );
    if (expected !== null && nbytes !== expected)
      throw new Error(`chunk ${key}: Blosc frame expands to ${nbytes} bytes but a chunk holds ${expected}`);
  });
}

/**
 * An HTTP chunk body may not exceed what its chunk declares: the decoded size when stored raw, plus room for a
 * codec's worst-case expansion (Blosc/zlib/gzip/zstd add far less than 1% + 64 KiB) when compressed. Sharded
 * arrays keep the store-wide cap (a shard holds many chunks).
 */
async function limitChunkBodies(store: MemoStore, path: string, format: 2 | 3): Promise<void> {
  const meta = await store.json(format === 2 ? `${path}/.zarray` : `${path}/zarr.json`);
  if (!meta) return;
  let elements: number;
  let itemBytes: number;
  let raw: boolean;
  if (format === 2) {
    elements = (meta.chunks as number[]).reduce((p, v) => p * v, 1);
    itemBytes = DTYPE_BYTES[V2_DTYPES[String(meta.dtype).slice(1)]] ?? 8;
    raw = !meta.compressor && (!Array.isArray(meta.filters) || meta.filters.length === 0);
  } else {
    const codecs = (meta.codecs as { name: string }[]) ?? [];
    if (codecs.some((c) => c.name === 'sharding_indexed')) return;
    const grid = meta.chunk_grid as { configuration: { chunk_shape: number[] } };
    elements = grid.configuration.chunk_shape.reduce((p, v) => p * v, 1);
    itemBytes = DTYPE_BYTES[String(meta.data_type)] ?? 8;
    raw = codecs.every((c) => c.name === 'bytes' || c.name === 'transpose');
  }
  const bytes = elements * itemBytes;
  store.limitChunks(`/${path}/`, raw ? bytes : Math.ceil(bytes * 1.01) + 65536);
}

function knownCodecs(): string {
  return [...new Set([...zarr.registry.keys()].map((k) => k.replace(/^numcodecs\./, '')))].join(', ');
}
