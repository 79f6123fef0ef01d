/**
 * Every `slideseg` sub-command, in help order. Each entry loads its module only when asked for: a command module
 * imports nothing heavy at the top (its library code is imported inside `run`), so `slideseg --help` and
 * `slideseg <command> --help` load no engine, codec or queue client. A new command is one file in `commands/` and
 * one line here.
 */
import type { Command } from './command.ts';

type CommandModule = { command: Command };

export const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  demo: () => import('./commands/demo.ts'),
  info: () => import('./commands/info.ts'),
  region: () => import('./commands/region.ts'),
  tissue: () => import('./commands/tissue.ts'),
  patches: () => import('./commands/patches.ts'),
  predict: () => import('./commands/predict.ts'),
  train: () => import('./commands/train.ts'),
  sweep: () => import('./commands/sweep.ts'),
  pretrain: () => import('./commands/pretrain.ts'),
  evaluate: () => import('./commands/evaluate.ts'),
  'eval-encoder': () => import('./commands/eval-encoder.ts'),
  export: () => import('./commands/export.ts'),
  infer: () => import('./commands/infer.ts'),
  'infer-many': () => import('./commands/infer-many.ts'),
  enqueue: () => import('./commands/enqueue.ts'),
  worker: () => import('./commands/worker.ts'),
  'queue-status': () => import('./commands/queue-status.ts'),
  view: () => import('./commands/view.ts'),
  backends: () => import('./commands/backends.ts'),
};

/** Loads one command, or every command (for the help listing). */
export async function loadCommand(name: string): Promise<Command | undefined> {
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  return load ? (await load()).command : undefined;
}

export async function loadAllCommands(): Promise<Command[]> {
  return Promise.all(Object.values(COMMANDS).map(async (load) => (await load()).command));
}
