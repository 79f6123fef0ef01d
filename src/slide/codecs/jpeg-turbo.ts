/**
 * JPEG blocks through libjpeg-turbo's TurboJPEG library, called with koffi (a C FFI): the system's libturbojpeg
 * (Debian/Ubuntu `libturbojpeg0`, Homebrew `jpeg-turbo`), or the file named by SLIDESEG_TURBOJPEG. A 256-px tile
 * decodes in ~0.3 ms this way against ~3 ms through a sharp/libvips pipeline, whose per-call set-up dominates
 * small images (bench/slide-read.ts). Flags 0 (accurate integer IDCT, fancy upsampling: libjpeg's defaults, which
 * OpenSlide and libvips use), so pixels equal theirs exactly. Where the library cannot be loaded, `decodeJpegTurbo`
 * answers null and the caller uses sharp.
 *
 * libjpeg-turbo writes straight into the tile's JS array, passed by address: handing koffi the typed array itself
 * costs far more (measured on a 256² tile: ~0.2 ms more per synchronous call, and 0.25–0.9 ms of this thread per call
 * issued to the pool, as koffi marshals it), and decoding into a native buffer then copying out costs ~35 µs per tile
 * (5–6 % more reads/s with 8 in flight without the copy). The native-buffer path remains for tiny blocks.
 */
import { createRequire } from 'node:module';
import { takePixelBuffer } from '../pixel-pool.ts';

/** TurboJPEG's pixel format TJPF_RGBA. */
const TJPF_RGBA = 7;

type Handle = unknown;
/** A native (C heap) pointer from koffi.alloc. */
type NativePointer = unknown;
interface DecompressFn {
  (...args: unknown[]): number;
  async(...args: unknown[]): void;
}
interface TurboJpeg {
  init(): Handle;
  decompress: DecompressFn;
  errorMessage(handle: Handle): string;
  /** TJERR_WARNING (0) or TJERR_FATAL (1) for the last error; absent before TurboJPEG 2.0. */
  errorCode?: (handle: Handle) => number;
  alloc(bytes: number): NativePointer;
  free(pointer: NativePointer): void;
  /** The native memory as a JS view, without copying. */
  view(pointer: NativePointer, bytes: number): ArrayBuffer;
  /** The address of a typed array's (off-heap, never moving) backing store. */
  address(array: Uint8Array): bigint;
}

/** Where the library is looked for, in order. */
const LIBRARY_NAMES = [
  'libturbojpeg.so.0',
  'libturbojpeg.so',
  'libturbojpeg.0.dylib',
  '/opt/homebrew/opt/jpeg-turbo/lib/libturbojpeg.0.dylib',
  '/usr/local/opt/jpeg-turbo/lib/libturbojpeg.0.dylib',
  'turbojpeg.dll',
];

let turbo: TurboJpeg | null | undefined;

let loadedFrom: string | undefined;

/** A function the library may lack (older versions), or undefined. */
function optionalFunc(lib: { func(signature: string): unknown }, signature: string) {
  try {
    return lib.func(signature) as (handle: Handle) => number;
  } catch {
    return undefined;
  }
}

function loadTurbo(): TurboJpeg | null {
  if (turbo !== undefined) return turbo;
  turbo = null;
  let koffi: typeof import('koffi');
  try {
    koffi = createRequire(import.meta.url)('koffi');
  } catch {
    return turbo;
  }
  const names = process.env.SLIDESEG_TURBOJPEG ? [process.env.SLIDESEG_TURBOJPEG] : LIBRARY_NAMES;
  for (const name of names) {
    try {
      const lib = koffi.load(name);
      turbo = {
        init: lib.func('void *tjInitDecompress()'),
        decompress: lib.func(
          'int tjDecompress2(void *handle, const uint8_t *src, unsigned long size, void *dst, int width, int pitch, int height, int format, int flags)',
        ) as DecompressFn,
        errorMessage: lib.func('const char *tjGetErrorStr2(void *handle)'),
        errorCode: optionalFunc(lib, 'int tjGetErrorCode(void *handle)'),
        alloc: (bytes) => koffi.alloc('uint8_t', bytes),
        free: (pointer) => koffi.free(pointer),
        view: (pointer, bytes) => koffi.view(pointer, bytes),
        address: (array) => koffi.address(array),
      };
      loadedFrom = name;
      break;
    } catch {
      // not at this name: try the next
    }
  }
  return turbo;
}

/** Whether JPEG blocks decode through libturbojpeg in this process (else through sharp). */
export function turboJpegAvailable(): boolean {
  return loadTurbo() !== null;
}

/** One line saying which JPEG decoder slide reads use, and how to get the fast one when it is missing. */
export function jpegDecoderDescription(): string {
  return loadTurbo()
    ? `libturbojpeg (${loadedFrom})`
    : 'sharp/libvips (libturbojpeg not found: install libturbojpeg0 or jpeg-turbo, or set SLIDESEG_TURBOJPEG, for ~10x faster tiles)';
}

/** A decode waiting for its batch to be dispatched. */
interface PendingDecode {
  src: Uint8Array;
  dst: Uint8Array;
  width: number;
  height: number;
  /** A stream whose frame height was lowered (codecs/block.ts): the warning about the skipped scan is expected. */
  top: boolean;
  resolve(): void;
  reject(err: Error): void;
}

/** A native output buffer and a JS view of it (made once: a view per call would cost an allocation). */
interface NativeBuffer {
  pointer: NativePointer;
  bytes: number;
  pixels: Uint8Array;
  /** The caller's own array (written through its address): nothing to copy or give back. */
  direct?: boolean;
}

/** Idle native buffers by size; a slide's tiles are all one size, so this is one short list in practice. */
const idleBuffers = new Map<number, NativeBuffer[]>();
/** Idle buffers kept per size: enough for every decode in flight on a 2–16-core machine. */
const MAX_IDLE_PER_SIZE = 32;

/**
 * Where a decode writes. Straight into the caller's array through its address where that is safe: V8 keeps typed
 * arrays over 64 bytes off its heap, where they never move, and the job holds the array until the decode ends. Else
 * (env SLIDESEG_TURBOJPEG_COPY=1, for comparison) a native buffer whose pixels are copied out.
 */
function target(tj: TurboJpeg, job: PendingDecode): NativeBuffer {
  if (job.dst.byteLength > 64 && process.env.SLIDESEG_TURBOJPEG_COPY !== '1') {
    return { pointer: tj.address(job.dst), bytes: job.dst.byteLength, pixels: job.dst, direct: true };
  }
  return takeBuffer(tj, job.dst.length);
}

function takeBuffer(tj: TurboJpeg, bytes: number): NativeBuffer {
  const reused = idleBuffers.get(bytes)?.pop();
  if (reused) return reused;
  const pointer = tj.alloc(bytes);
  return { pointer, bytes, pixels: new Uint8Array(tj.view(pointer, bytes)) };
}

/** Copies the decoded pixels out (the caller keeps them) and makes the buffer idle again, or frees it. */
function finishBuffer(tj: TurboJpeg, buffer: NativeBuffer, job: PendingDecode, ok: boolean): void {
  if (buffer.direct) return;
  if (ok) job.dst.set(buffer.pixels.subarray(0, job.dst.length));
  const idle = idleBuffers.get(buffer.bytes) ?? [];
  idleBuffers.set(buffer.bytes, idle);
  if (idle.length < MAX_IDLE_PER_SIZE) idle.push(buffer);
  else tj.free(buffer.pointer);
}

let batch: PendingDecode[] = [];
/** Decompressor handles: one for this thread's decodes, the others lent to thread-pool decodes. */
let ownHandle: Handle | undefined;
const spareHandles: Handle[] = [];

/** tjDecompress2's arguments: the whole frame, packed rows (pitch 0), RGBA, flags 0 (accurate IDCT). */
function decompressArgs(handle: Handle, job: PendingDecode, out: NativeBuffer): unknown[] {
  return [handle, job.src, job.src.length, out.pointer, job.width, 0, job.height, TJPF_RGBA, 0];
}

/**
 * Null when the decode succeeded, else libjpeg-turbo's message (for a decode on the pool, libjpeg's own messages are
 * written to that thread's storage and read here as "No error": the caller then asks sharp, whose message is reported).
 *
 * A lowered frame (`top`) leaves the rest of the scan unread, which libjpeg skips up to EOI with a warning ("extraneous
 * bytes before marker"); the status is then -1 with TJERR_WARNING. Since the message cannot be read for pool decodes,
 * the warning is accepted when the frame's last row was written: its alpha bytes, cleared before the call, are 255 —
 * libjpeg writes rows in order, so a decode stopped early by a fatal error cannot pass as complete.
 */
function failure(tj: TurboJpeg, handle: Handle, job: PendingDecode, out: NativeBuffer, status: number) {
  if (status === 0) return null;
  if (job.top && tj.errorCode?.(handle) === 0 && lastRowWritten(job, out)) return null;
  return tj.errorMessage(handle);
}

function lastRowStart(job: PendingDecode): number {
  return (job.height - 1) * job.width * 4;
}

/** Before a top decode: clears its last row, whose alpha `lastRowWritten` then checks. */
function clearLastRow(job: PendingDecode, out: NativeBuffer): void {
  if (job.top) out.pixels.fill(0, lastRowStart(job), lastRowStart(job) + job.width * 4);
}

function lastRowWritten(job: PendingDecode, out: NativeBuffer): boolean {
  const start = lastRowStart(job);
  for (let i = start + 3; i < start + job.width * 4; i += 4) if (out.pixels[i] !== 255) return false;
  return true;
}

function decodeHere(tj: TurboJpeg, job: PendingDecode): void {
  ownHandle ??= tj.init();
  const out = target(tj, job);
  clearLastRow(job, out);
  const message = failure(tj, ownHandle, job, out, tj.decompress(...decompressArgs(ownHandle, job, out)));
  finishBuffer(tj, out, job, message === null);
  if (message === null) job.resolve();
  else job.reject(new Error(message));
}

/**
 * Pool decodes issued at once, at most: libuv's thread count (koffi's async calls are libuv work items), capped at
 * koffi's 8 resident call pools. Issuing more only queues them inside libuv, and each call beyond the resident pools
 * gets freshly allocated stack and heap blocks: measured with 16 in flight, 4x the issuing cost on this thread and
 * ~90 µs more CPU per 256² tile than with 4 (out/… scratch benchmark quoted in the commit).
 */
const MAX_POOL_IN_FLIGHT = Math.min(8, Math.max(1, Number(process.env.UV_THREADPOOL_SIZE) || 4));
let poolInFlight = 0;
const poolQueue: PendingDecode[] = [];

function decodeOnPool(tj: TurboJpeg, job: PendingDecode): void {
  if (poolInFlight >= MAX_POOL_IN_FLIGHT) {
    poolQueue.push(job);
    return;
  }
  poolInFlight++;
  const handle = spareHandles.pop() ?? tj.init();
  const out = target(tj, job);
  clearLastRow(job, out);
  tj.decompress.async(...decompressArgs(handle, job, out), (err: Error | null, status: number) => {
    const message = err ? err.message : failure(tj, handle, job, out, status);
    spareHandles.push(handle);
    poolInFlight--;
    const next = poolQueue.shift();
    if (next) decodeOnPool(tj, next);
    finishBuffer(tj, out, job, message === null);
    if (message === null) job.resolve();
    else job.reject(new Error(message));
  });
}

/**
 * The decodes asked for in one turn of the event loop (a region's blocks arrive together once their bytes are read)
 * all go to libuv's thread pool, where they run in parallel while this thread goes on with the reads' other work
 * (fetching, composing, the callers' own work); measured on 2 cores, keeping a share of them here made this thread
 * the bottleneck of concurrent reads (bench/slide-read.ts). A decode alone runs here: a thread hop costs more than
 * decoding a small tile.
 */
function dispatch(tj: TurboJpeg): void {
  const jobs = batch;
  batch = [];
  if (jobs.length === 1) decodeHere(tj, jobs[0]);
  else for (const job of jobs) decodeOnPool(tj, job);
}

/**
 * Decodes a complete JPEG stream whose frame header declares `declared` pixels to RGBA, into a new buffer of exactly
 * that size. Null when libturbojpeg is unavailable; throws libjpeg-turbo's message for a stream it rejects (also for
 * recoverable corruption, which it reports as a warning).
 */
export async function decodeJpegTurbo(
  stream: Uint8Array,
  declared: { width: number; height: number },
  { top = false }: { top?: boolean } = {},
): Promise<{ rgba: Uint8Array; width: number; height: number } | null> {
  const tj = loadTurbo();
  if (!tj || (top && !tj.errorCode)) return null;
  // Written only when the decode completes, in a later macrotask: see pixel-pool.ts for why that matters.
  const rgba = takePixelBuffer(declared.width * declared.height * 4);
  await new Promise<void>((resolve, reject) => {
    if (batch.length === 0) setImmediate(dispatch, tj);
    batch.push({
      src: stream,
      dst: rgba,
      width: declared.width,
      height: declared.height,
      top,
      resolve,
      reject,
    });
  });
  return { rgba, width: declared.width, height: declared.height };
}
