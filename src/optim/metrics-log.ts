/**
 * `metrics.jsonl` of a run: one JSON record per line, appended as training goes. On resume the records past the
 * resumed step are dropped (a killed run may have logged beyond its last checkpoint), so the log and the
 * checkpoint always tell the same story.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises';

export type LogRecord = { type: 'train' | 'val'; step: number; [k: string]: unknown };

export interface MetricsLog {
  path: string;
  /** Every record so far, in order. */
  history: LogRecord[];
  record(r: LogRecord): Promise<void>;
}

/** Opens (and truncates to `resumedStep`; 0 = a fresh run) the log at `path`. */
export async function openMetricsLog(path: string, resumedStep: number): Promise<MetricsLog> {
  const history: LogRecord[] = [];
  if (resumedStep > 0) {
    try {
      for (const line of (await readFile(path, 'utf8')).split('\n')) {
        if (!line) continue;
        const r = JSON.parse(line) as LogRecord;
        if (r.step <= resumedStep) history.push(r);
      }
    } catch {
      // no log yet
    }
  }
  await writeFile(path, history.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return {
    path,
    history,
    async record(r) {
      history.push(r);
      await appendFile(path, `${JSON.stringify(r)}\n`);
    },
  };
}
