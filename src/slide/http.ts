/**
 * One bounded HTTP(S) GET for the slide readers (TIFF range reads and OME-Zarr keys): a connect timeout, a
 * deadline for the response headers, an idle timeout between body chunks and an overall deadline; a body cap
 * (the requested range, or the largest document/chunk a key may hold); redirects followed up to a limit;
 * content-encoded bodies inflated only up to the same cap. node:http rather than fetch, because fetch inflates
 * gzip transparently and without a limit, and has no idle timeout.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { SlideError } from './errors.ts';

export interface HttpLimits {
  /** Connect and wait for the response headers at most this long (default 30 s): "no answer". */
  timeoutMs?: number;
  /** TCP/TLS connect at most this long (default min(10 s, timeoutMs)). */
  connectTimeoutMs?: number;
  /** Longest silence between two body chunks (default timeoutMs). */
  idleTimeoutMs?: number;
  /** The whole request, body included, at most this long (default 120 s or 4 × timeoutMs if more). */
  totalTimeoutMs?: number;
  /** Redirects followed before giving up (default 5). */
  maxRedirects?: number;
}

export interface HttpAnswer {
  status: number;
  statusText: string;
  headers: IncomingMessage['headers'];
  body: Uint8Array;
  /** The URL that answered (after redirects). */
  url: string;
}

// Keep-alive: a slide read is many small range requests to one host.
const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 16 });

/** Statuses whose body we do not need: drained only up to a small cap (error pages). */
const ERROR_BODY_BYTES = 64 * 1024;

/**
 * GETs `url` with `headers`; resolves with the (decoded) body of at most `maxBytes` bytes, or throws a
 * one-line SlideError naming `name` (the slide) and the reason.
 */
export async function httpGet(
  name: string,
  url: string,
  headers: Record<string, string>,
  maxBytes: number,
  limits: HttpLimits = {},
): Promise<HttpAnswer> {
  const maxRedirects = limits.maxRedirects ?? 5;
  let current = url;
  for (let hop = 0; ; hop++) {
    const answer = await getOnce(name, current, headers, maxBytes, limits);
    const location = answer.headers.location;
    if (answer.status >= 300 && answer.status < 400 && answer.status !== 304 && location) {
      if (hop >= maxRedirects) throw new SlideError(name, `more than ${maxRedirects} HTTP redirects`);
      const next = new URL(location, current);
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw new SlideError(name, `redirect to a non-HTTP URL (${next.protocol})`);
      current = next.href;
      continue;
    }
    return { ...answer, url: current };
  }
}

function getOnce(
  name: string,
  url: string,
  headers: Record<string, string>,
  maxBytes: number,
  limits: HttpLimits,
): Promise<Omit<HttpAnswer, 'url'>> {
  const timeoutMs = limits.timeoutMs ?? 30_000;
  const connectMs = limits.connectTimeoutMs ?? Math.min(10_000, timeoutMs);
  const idleMs = limits.idleTimeoutMs ?? timeoutMs;
  const totalMs = limits.totalTimeoutMs ?? Math.max(120_000, 4 * timeoutMs);
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const timers: NodeJS.Timeout[] = [];
    let settled = false;
    const finish = (err: SlideError | null, value?: Omit<HttpAnswer, 'url'>) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value as Omit<HttpAnswer, 'url'>);
    };
    const fail = (reason: string) => finish(new SlideError(name, reason));
    const req = (secure ? httpsRequest : httpRequest)(target, {
      method: 'GET',
      // Ask for the bytes as stored: a range of a compressed response would be meaningless.
      headers: { 'accept-encoding': 'identity', ...headers },
      agent: secure ? httpsAgent : httpAgent,
    });
    timers.push(setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs));
    timers.push(setTimeout(() => fail(`request not finished within ${totalMs} ms`), totalMs));
    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      const t = setTimeout(
        () => fail(`cannot reach server (no connection within ${connectMs} ms)`),
        connectMs,
      );
      timers.push(t);
      socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(t));
    });
    req.on('error', (err: NodeJS.ErrnoException) => fail(`cannot reach server (${err.code ?? err.message})`));
    req.on('response', (res) => {
      clearTimeout(timers[0]);
      const status = res.statusCode ?? 0;
      // For a range request only 206 carries the bytes; a 200 (whole file) is reported, never downloaded.
      const ranged = Object.keys(headers).some((h) => h.toLowerCase() === 'range');
      const ok = ranged ? status === 206 : status >= 200 && status < 300;
      const cap = ok ? maxBytes : ERROR_BODY_BYTES;
      const declared = Number(res.headers['content-length']);
      const encoding = String(res.headers['content-encoding'] ?? 'identity').toLowerCase();
      if (ok && encoding === 'identity' && Number.isFinite(declared) && declared > cap) {
        fail(`server announces ${declared} bytes where at most ${cap} were asked for`);
        return;
      }
      const parts: Buffer[] = [];
      let received = 0;
      // One idle timer, re-armed on every chunk (refresh keeps the same handle, so `timers` does not grow).
      const idle = setTimeout(() => fail(`no data for ${idleMs} ms`), idleMs);
      timers.push(idle);
      res.on('data', (chunk: Buffer) => {
        if (settled) return; // data already in flight when the request failed: dropped, no timer re-armed
        received += chunk.length;
        if (received > cap) {
          if (ok) {
            fail(`server sent more than the ${cap} bytes asked for`);
            return;
          }
          // An error page's body is not needed: keep its status, drop the connection.
          finish(null, {
            status,
            statusText: res.statusMessage ?? '',
            headers: res.headers,
            body: new Uint8Array(0),
          });
          res.destroy();
          return;
        }
        parts.push(chunk);
        idle.refresh();
      });
      res.on('error', (err) => fail(`connection failed while reading the body (${err.message})`));
      res.on('aborted', () => fail('connection closed before the body was complete'));
      res.on('end', () => {
        let body: Uint8Array = Buffer.concat(parts);
        if (encoding !== 'identity' && ok) {
          try {
            body = decode(encoding, body, cap);
          } catch (err) {
            const why =
              (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
                ? `expands beyond ${cap} bytes`
                : (err as Error).message;
            fail(`cannot decode the ${encoding} response body: ${why}`);
            return;
          }
        }
        finish(null, { status, statusText: res.statusMessage ?? '', headers: res.headers, body });
      });
    });
    req.end();
  });
}

/** Inflates a content-encoded body, never beyond `cap` bytes. */
function decode(encoding: string, body: Uint8Array, cap: number): Uint8Array {
  const opts = { maxOutputLength: Math.max(cap, 1) };
  if (encoding === 'gzip' || encoding === 'x-gzip') return new Uint8Array(gunzipSync(body, opts));
  if (encoding === 'deflate') return new Uint8Array(inflateSync(body, opts));
  if (encoding === 'br') return new Uint8Array(brotliDecompressSync(body, opts));
  throw new Error('unsupported content encoding');
}
