/**
 * A child process of `inferMany`: segments the one slide its parent sends (options as given to `inferSlide`),
 * answers `{ ok: true }` or `{ error }` and exits. One process per slide keeps a crash, a leak or an out-of-memory
 * abort in one slide from touching the others or the parent.
 */
import { tuneMalloc } from '../core/malloc-tuning.ts';
import { type InferSlideOptions, inferSlide } from './slide-infer.ts';

tuneMalloc(); // as the CLI that forks this process does

/** What the parent sends: the slide, its temporary output folder and name, and the plain-data options. */
export interface CohortWorkerJob {
  slide: string;
  out: string;
  name: string;
  options: Omit<InferSlideOptions, 'out' | 'name'>;
}

export type CohortWorkerReply = { ok: true } | { error: string };

function reply(message: CohortWorkerReply, code: number): void {
  process.send?.(message, undefined, {}, () => process.exit(code));
}

process.once('message', (job: CohortWorkerJob) => {
  inferSlide(job.slide, { ...job.options, out: job.out, name: job.name, log: null }).then(
    () => reply({ ok: true }, 0),
    (e: unknown) =>
      reply({ error: (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ') }, 1),
  );
});
