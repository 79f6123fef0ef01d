/**
 * Decoded blocks' pixel buffers, recycled: a block evicted from the block cache gives its buffer to the next decode
 * of a block of the same size. Cold random reads on a large slide decode a new block for nearly every block they
 * touch, and each fresh 256 KiB array cost a zero fill plus V8's external-memory garbage collections (a full
 * mark-compact every ~20 reads); reusing the evicted ones removes both (out/… scratch measurement in the commit).
 *
 * The contract that makes reuse safe: a block's pixels are only read synchronously, right after the cache hands
 * them out (tiff/source.ts copies them into the region), and a recycled buffer is only written by a decode that
 * completes in a later macrotask (codecs/jpeg-turbo.ts), after every pending continuation has run.
 */

/** Idle bytes kept at most; beyond it, evicted buffers are left to the garbage collector. */
const MAX_IDLE_BYTES = 64 * 1024 * 1024;

const idle = new Map<number, Uint8Array[]>();
let idleBytes = 0;
/** Buffers made here: a block may be a view of the top rows of one (a partial JPEG block), and its whole buffer is reused. */
const madeHere = new WeakSet<ArrayBufferLike>();

/** An idle buffer of `bytes` bytes, taken out of the pool, or undefined. */
function takeIdle(bytes: number): Uint8Array | undefined {
  const reused = idle.get(bytes)?.pop();
  if (reused) idleBytes -= bytes;
  return reused;
}

/** A new buffer, marked as made here (so that its views and releases come back to the pool). */
function makeBuffer(bytes: number): Uint8Array {
  const made = new Uint8Array(bytes);
  madeHere.add(made.buffer);
  return made;
}

/** A buffer of `bytes` bytes whose contents are undefined (the caller overwrites every byte). */
export function takePixelBuffer(bytes: number): Uint8Array {
  return takeIdle(bytes) ?? makeBuffer(bytes);
}

/** A buffer of `bytes` bytes, all zero (a reused one is cleared: far cheaper than fresh memory's page faults). */
export function takeZeroedPixelBuffer(bytes: number): Uint8Array {
  return takeIdle(bytes)?.fill(0) ?? makeBuffer(bytes);
}

/**
 * The caller is done with the pixels of a region it read (`RGBAImage.data`): when the buffer was made here (a TIFF
 * region), it backs a later read or decode. The caller must not touch them again. Whole-slide inference releases
 * every tile once it is normalised and painted: a 512-px tile is 1 MiB, and on VMs where a process's first touch of
 * memory costs ~4 ms per MiB in page faults, fresh buffers per tile were a large part of the pipeline's memory traffic.
 */
export function releasePixels(data: Uint8Array): void {
  if (madeHere.has(data.buffer)) recyclePixelBuffer(data);
}

/**
 * Gives a buffer nobody reads any more back for reuse. A view of part of a buffer is taken (as its whole buffer) only
 * when the buffer was made here; others may share theirs with other views.
 */
export function recyclePixelBuffer(view: Uint8Array): void {
  const whole = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
  if (!whole && !madeHere.has(view.buffer)) return;
  const buffer = whole ? view : new Uint8Array(view.buffer);
  const bytes = buffer.byteLength;
  if (bytes === 0 || !(buffer.buffer instanceof ArrayBuffer) || idleBytes + bytes > MAX_IDLE_BYTES) return;
  let list = idle.get(bytes);
  if (!list) {
    list = [];
    idle.set(bytes, list);
  }
  list.push(buffer);
  idleBytes += bytes;
}

/** Idle bytes held now (for tests). */
export function idlePixelBytes(): number {
  return idleBytes;
}
