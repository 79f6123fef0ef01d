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

/** A buffer of `bytes` bytes whose contents are undefined (the caller overwrites every byte). */
export function takePixelBuffer(bytes: number): Uint8Array {
  const reused = idle.get(bytes)?.pop();
  if (reused) {
    idleBytes -= bytes;
    return reused;
  }
  const made = new Uint8Array(bytes);
  madeHere.add(made.buffer);
  return made;
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
