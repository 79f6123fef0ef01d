/** TIFF LZW decompression (MSB-first codes, 9-12 bits, "early change" as libtiff writes it). */
export function lzwDecode(input: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  // Dictionary as (prefix index, last byte, length) so strings are never materialised.
  const prefix = new Int32Array(4096);
  const suffix = new Uint8Array(4096);
  const length = new Int32Array(4096);
  const first = new Uint8Array(4096);
  for (let i = 0; i < 256; i++) {
    prefix[i] = -1;
    suffix[i] = i;
    length[i] = 1;
    first[i] = i;
  }
  let next = 258;
  let codeLen = 9;
  let bitPos = 0;
  const totalBits = input.length * 8;
  let o = 0;
  let prev = -1;

  const readCode = (): number => {
    if (bitPos + codeLen > totalBits) return 257;
    let code = 0;
    for (let i = 0; i < codeLen; i++) {
      const bit = (input[(bitPos + i) >> 3] >> (7 - ((bitPos + i) & 7))) & 1;
      code = (code << 1) | bit;
    }
    bitPos += codeLen;
    return code;
  };

  const emit = (code: number): void => {
    const len = length[code];
    let end = o + len;
    // Truncate silently past the expected size (some writers pad strips).
    let c = code;
    for (let p = end - 1; p >= o; p--) {
      if (p < expected) out[p] = suffix[c];
      c = prefix[c];
    }
    if (end > expected) end = expected;
    o = end;
  };

  while (o < expected) {
    const code = readCode();
    if (code === 257) break;
    if (code === 256) {
      next = 258;
      codeLen = 9;
      const c = readCode();
      if (c === 257) break;
      if (c > 255) throw new Error(`corrupt LZW data (code ${c} after clear)`);
      emit(c);
      prev = c;
      continue;
    }
    if (prev < 0) throw new Error('corrupt LZW data (no clear code at start)');
    if (code < next) {
      emit(code);
      if (next < 4096) {
        prefix[next] = prev;
        suffix[next] = first[code];
        length[next] = length[prev] + 1;
        first[next] = first[prev];
        next++;
      }
    } else if (code === next && next < 4096) {
      prefix[next] = prev;
      suffix[next] = first[prev];
      length[next] = length[prev] + 1;
      first[next] = first[prev];
      next++;
      emit(code);
    } else {
      throw new Error(`corrupt LZW data (code ${code} not yet defined)`);
    }
    prev = code;
    if (next + 1 >= 1 << codeLen && codeLen < 12) codeLen++;
  }
  if (o < expected) throw new Error(`LZW data ends after ${o} of ${expected} bytes`);
  return out;
}
