/**
 * NumPy .npy reader and writer (format versions 1.0–3.0, little-endian, C order) for the dtypes
 * slideseg exchanges with Python: float32/float64, uint8, int32/int64, bool.
 */
import { readFile, writeFile } from 'node:fs/promises';

export type NpyArray =
  | { dtype: 'float32'; shape: number[]; data: Float32Array }
  | { dtype: 'float64'; shape: number[]; data: Float64Array }
  | { dtype: 'uint8'; shape: number[]; data: Uint8Array }
  | { dtype: 'int32'; shape: number[]; data: Int32Array }
  | { dtype: 'int64'; shape: number[]; data: BigInt64Array }
  | { dtype: 'bool'; shape: number[]; data: Uint8Array };

const DESCR: Record<string, NpyArray['dtype']> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '|u1': 'uint8',
  '<u1': 'uint8',
  '<i4': 'int32',
  '<i8': 'int64',
  '|b1': 'bool',
};

export function parseNpy(buf: Uint8Array, file = '<buffer>'): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (buf.byteLength < 10 || !magic.every((m, i) => buf[i] === m))
    throw new Error(`${file}: not a .npy file`);
  const major = buf[6]!;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(buf.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeStr = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeStr == null) throw new Error(`${file}: malformed .npy header ${header}`);
  if (fortran) throw new Error(`${file}: Fortran-order arrays are not supported`);
  const dtype = DESCR[descr];
  if (!dtype) throw new Error(`${file}: unsupported dtype ${descr}`);
  const shape = shapeStr
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + headerLen;
  const bytes = buf.slice(off);
  const need = (k: number) => {
    if (bytes.byteLength < n * k)
      throw new Error(`${file}: truncated (${bytes.byteLength} of ${n * k} bytes)`);
    return bytes.buffer;
  };
  switch (dtype) {
    case 'float32':
      return { dtype, shape, data: new Float32Array(need(4), 0, n) };
    case 'float64':
      return { dtype, shape, data: new Float64Array(need(8), 0, n) };
    case 'int32':
      return { dtype, shape, data: new Int32Array(need(4), 0, n) };
    case 'int64':
      return { dtype, shape, data: new BigInt64Array(need(8), 0, n) };
    default:
      return { dtype, shape, data: new Uint8Array(need(1), 0, n) };
  }
}

export async function readNpy(path: string): Promise<NpyArray> {
  const b = await readFile(path);
  return parseNpy(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), path);
}

export function serializeNpy(arr: NpyArray): Uint8Array {
  const descr = { float32: '<f4', float64: '<f8', uint8: '|u1', int32: '<i4', int64: '<i8', bool: '|b1' }[
    arr.dtype
  ];
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const h = new TextEncoder().encode(header);
  const data = new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength);
  const out = new Uint8Array(10 + h.byteLength + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, h.byteLength, true);
  out.set(h, 10);
  out.set(data, 10 + h.byteLength);
  return out;
}

export async function writeNpy(path: string, arr: NpyArray): Promise<void> {
  await writeFile(path, serializeNpy(arr));
}
