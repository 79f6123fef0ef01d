/**
 * Learning-rate schedules as pure functions of the step, so resuming needs only the step number.
 * Defaults follow SegFormer's mmseg recipe: poly decay with power 1.0 to min_lr 0, after a linear warm-up
 * that starts from lr × warmupRatio (1e-6).
 */
export interface ScheduleOptions {
  kind: 'poly' | 'cosine' | 'constant';
  baseLr: number;
  totalSteps: number;
  warmupSteps?: number;
  warmupRatio?: number;
  power?: number;
  minLr?: number;
}

/** The schedule of a config's `optim` section (train and pretrain share its keys) over `totalSteps`. */
export function scheduleOf(
  optim: {
    schedule: ScheduleOptions['kind'];
    lr: number;
    warmupSteps?: number;
    warmupRatio?: number;
    power?: number;
    minLr?: number;
  },
  totalSteps: number,
): ScheduleOptions {
  return {
    kind: optim.schedule,
    baseLr: optim.lr,
    totalSteps,
    warmupSteps: optim.warmupSteps,
    warmupRatio: optim.warmupRatio,
    power: optim.power,
    minLr: optim.minLr,
  };
}

export function learningRate(step: number, o: ScheduleOptions): number {
  const minLr = o.minLr ?? 0;
  const warmup = o.warmupSteps ?? 0;
  let lr: number;
  const progress = Math.min(1, step / Math.max(1, o.totalSteps));
  switch (o.kind) {
    case 'poly':
      lr = (o.baseLr - minLr) * (1 - progress) ** (o.power ?? 1) + minLr;
      break;
    case 'cosine':
      lr = minLr + 0.5 * (o.baseLr - minLr) * (1 + Math.cos(Math.PI * progress));
      break;
    default:
      lr = o.baseLr;
  }
  if (step < warmup) {
    // mmcv's linear warm-up: k = (1 - step/warmup) * (1 - ratio); lr *= (1 - k)
    const ratio = o.warmupRatio ?? 1e-6;
    const k = (1 - step / warmup) * (1 - ratio);
    lr *= 1 - k;
  }
  return lr;
}
