/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors, format v1):
 * 8-byte little-endian header length N, N bytes of JSON header, then the raw little-endian data.
 * Header entries: { dtype, shape, data_offsets: [begin, end] } relative to the data section, plus
 * an optional `__metadata__` map of strings.
 */
import { SlidesegError } from '../core/errors.ts';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface SafeTensor {
  dtype: SafetensorsDType;
  shape: number[];
  /** Raw little-endian bytes (a view into the file buffer when read). */
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

const DTYPE_SIZE: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** An error about a specific file, with the file named in the message. */
export class SafetensorsError extends SlidesegError {
  override readonly code = 'checkpoint';
  constructor(
    readonly file: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${reason}`, options);
    this.name = 'SafetensorsError';
  }
}

/** Parses a safetensors buffer; `file` is used in error messages only. */
export function parseSafetensors(buf: Uint8Array, file = '<buffer>'): SafetensorsFile {
  if (buf.byteLength < 8)
    throw new SafetensorsError(file, `not a safetensors file (${buf.byteLength} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen <= 0 || headerLen > buf.byteLength - 8 || headerLen > 100_000_000) {
    throw new SafetensorsError(file, `bad header length ${headerLen} (file has ${buf.byteLength} bytes)`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new SafetensorsError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (header == null || typeof header !== 'object' || Array.isArray(header)) {
    throw new SafetensorsError(file, 'header is not a JSON object');
  }
  const dataStart = 8 + headerLen;
  const dataLen = buf.byteLength - dataStart;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: string; shape?: unknown; data_offsets?: unknown };
    const dtype = e.dtype as SafetensorsDType;
    if (!(dtype in DTYPE_SIZE))
      throw new SafetensorsError(file, `tensor '${name}' has unsupported dtype ${e.dtype}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, `tensor '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0)) {
      throw new SafetensorsError(file, `tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin || end > dataLen) {
      throw new SafetensorsError(
        file,
        `tensor '${name}' data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes)`,
      );
    }
    const shape = e.shape as number[];
    const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[dtype];
    if (end - begin !== expected) {
      throw new SafetensorsError(
        file,
        `tensor '${name}' has ${end - begin} bytes but ${dtype}[${shape.join(',')}] needs ${expected}`,
      );
    }
    tensors.set(name, { dtype, shape, bytes: buf.subarray(dataStart + begin, dataStart + end) });
  }
  return { tensors, metadata };
}

/** Serialises tensors (in the given order, 8-byte aligned header as the reference writer does). */
export function serializeSafetensors(
  tensors: Iterable<[string, SafeTensor]>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.byteLength] };
    parts.push(t.bytes);
    offset += t.bytes.byteLength;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  while ((8 + encoder.encode(json).byteLength) % 8 !== 0) json += ' ';
  const headerBytes = encoder.encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.byteLength;
  for (const part of parts) {
    out.set(part, p);
    p += part.byteLength;
  }
  return out;
}

/** Decodes a tensor to Float32Array (F32, F16, BF16, F64 accepted). */
export function toFloat32(t: SafeTensor, name = 'tensor'): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const b = t.bytes;
  switch (t.dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      new Uint8Array(out.buffer).set(b);
      return out;
    }
    case 'F64': {
      const tmp = new Float64Array(n);
      new Uint8Array(tmp.buffer).set(b);
      return Float32Array.from(tmp);
    }
    case 'F16': {
      const out = new Float32Array(n);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const u32 = new Uint32Array(out.buffer);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i < n; i++) u32[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    default:
      throw new Error(`${name}: dtype ${t.dtype} is not a floating-point type`);
  }
}

export function fromFloat32(data: Float32Array, shape: number[]): SafeTensor {
  return { dtype: 'F32', shape, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Round-to-nearest-even float32 -> float16 bits. */
export function floatToHalf(v: number): number {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  e = h >> 10;
  return sign | h;
}
