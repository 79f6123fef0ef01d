import { isSegformerPreset, SEGFORMER_PRESETS } from '../models/segformer/config.ts';

/** Checks the train and pretrain configs share; every message names the config source and the key. */
export class ConfigChecks {
  constructor(readonly src: string) {}

  bad(message: string): Error {
    return new Error(`${this.src}: ${message}`);
  }

  posInt(v: unknown, key: string): void {
    if (!Number.isInteger(v) || (v as number) < 1)
      throw this.bad(`${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }

  /** The keys both runs have: steps, batch size, learning rate. */
  run(c: { steps: number; batchSize: number }): void {
    this.posInt(c.steps, 'steps');
    this.posInt(c.batchSize, 'batchSize');
  }

  learningRate(lr: number): void {
    if (!(lr > 0)) throw this.bad(`optim.lr must be > 0, got ${lr}`);
  }

  /** A named preset unless the model comes from a checkpoint. */
  preset(model: { from?: string; preset: string }): void {
    if (!model.from && !isSegformerPreset(model.preset))
      throw this.bad(`model.preset must be one of ${SEGFORMER_PRESETS.join(', ')}, got ${model.preset}`);
  }
}
