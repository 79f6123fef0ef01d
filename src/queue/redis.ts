/** Redis connections for the BullMQ queues (slide inference, sweeps). */
import { Redis, type RedisOptions } from 'ioredis';

/** redis://[user:pass@]host:port[/db] → ioredis options (BullMQ wants maxRetriesPerRequest null). */
export function redisOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--queue: not a redis:// URL: ${url}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new Error(`--queue: not a redis:// URL: ${url}`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`--queue: bad database number in ${url}`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db,
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}

/** A client for BullMQ; BullMQ leaves clients it is given open, so callers quit them after closing. */
export function redisConnection(url: string): Redis {
  return new Redis(redisOptions(url));
}
