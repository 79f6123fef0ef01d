/** A one-line progress report (steps/s, ETA and whatever metrics the caller passes) on stderr. */
export class Progress {
  private readonly start = performance.now();
  private lastDraw = 0;
  private readonly tty = process.stderr.isTTY === true;

  constructor(
    readonly label: string,
    /** 0 when unknown. */
    readonly total: number,
    readonly startAt = 0,
  ) {}

  update(done: number, fields: Record<string, string | number> = {}, force = false): void {
    const now = performance.now();
    if (!force && now - this.lastDraw < (this.tty ? 200 : 5000)) return;
    this.lastDraw = now;
    const elapsed = (now - this.start) / 1000;
    const rate = (done - this.startAt) / Math.max(elapsed, 1e-9);
    const extra = Object.entries(fields)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? formatNumber(v) : v}`)
      .join('  ');
    if (!(this.total > 0)) {
      // Unknown total (e.g. patches streamed from slides): count and rate only.
      const line = `${this.label} ${done}  ${rate.toFixed(2)}/s  ${formatTime(elapsed)} elapsed  ${extra}`;
      process.stderr.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`);
      return;
    }
    const eta = rate > 0 ? (this.total - done) / rate : Number.POSITIVE_INFINITY;
    const pct = ((100 * done) / this.total).toFixed(0).padStart(3);
    const width = 24;
    const filled = Math.round((width * done) / this.total);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const line = `${this.label} ${pct}% ${bar} ${done}/${this.total}  ${rate.toFixed(2)}/s  ETA ${formatTime(eta)}  ${extra}`;
    process.stderr.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`);
  }

  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

export function formatTime(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0
    ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`
    : `${m}:${String(sec).padStart(2, '0')}`;
}

function formatNumber(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e4 ? v.toPrecision(4) : v.toExponential(2);
}
