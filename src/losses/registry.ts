/**
 * The one table from loss names (as written in training configs) to factories, with the modes each is defined in.
 * A model with one logit trains in `binary` mode (sigmoid), a model with C ≥ 2 logits in `multiclass` mode
 * (softmax); targets are integer label maps [N,H,W] in both, and `ignoreIndex` is passed to every factory.
 * train, pretrain's fine-tuning and the README's loss table all read this table.
 */
import { bceWithLogitsLoss, softBCEWithLogitsLoss } from './bce.ts';
import { combineLosses } from './combine.ts';
import { crossEntropyLoss, softCrossEntropyLoss } from './crossEntropy.ts';
import { focalLoss } from './focal.ts';
import { lovaszLoss } from './lovasz.ts';
import { mccLoss } from './mcc.ts';
import { diceLoss, jaccardLoss, tverskyLoss } from './overlap.ts';
import type { LossFn } from './types.ts';

/** The modes a training loss runs in: one logit (sigmoid) or C ≥ 2 logits (softmax). */
export type TrainingMode = 'binary' | 'multiclass';

/** A loss as a config names it: factory options plus the term's weight in the sum. */
export interface LossTerm {
  name: string;
  weight?: number;
  [option: string]: unknown;
}

export interface LossEntry {
  /** The modes it is defined in. */
  modes: readonly TrainingMode[];
  /** What it is, one line, for the docs. */
  summary: string;
  /** Its options (besides weight and ignoreIndex), for the docs. */
  options: string;
  create(mode: TrainingMode, options: Record<string, unknown>): LossFn;
}

const BOTH: readonly TrainingMode[] = ['binary', 'multiclass'];

export const LOSSES: Readonly<Record<string, LossEntry>> = {
  ce: {
    modes: ['multiclass'],
    summary: 'cross-entropy (PyTorch `CrossEntropyLoss`)',
    options: '`weight` (per class), `labelSmoothing`',
    create: (_, o) => crossEntropyLoss(o),
  },
  'soft-ce': {
    modes: ['multiclass'],
    summary: 'cross-entropy with label smoothing (smp `SoftCrossEntropyLoss`)',
    options: '`smoothFactor`',
    create: (_, o) => softCrossEntropyLoss(o),
  },
  bce: {
    modes: ['binary'],
    summary: 'binary cross-entropy on the logit (PyTorch `BCEWithLogitsLoss`), mean over non-ignored pixels',
    options: '`posWeight`',
    create: (_, o) => bceWithLogitsLoss(o),
  },
  'soft-bce': {
    modes: ['binary'],
    summary:
      'BCE with label smoothing (smp `SoftBCEWithLogitsLoss`): `smoothFactor` s maps 1 → 1−s, 0 → s; `labelSmoothing` ε (Keras) maps 1 → 1−ε/2, 0 → ε/2',
    options: '`smoothFactor` or `labelSmoothing`, `posWeight`',
    create: (_, o) => softBCEWithLogitsLoss(o),
  },
  mcc: {
    modes: ['binary'],
    summary:
      '1 − Matthews correlation on soft counts; `variant: smp` (eps on each count) or `paper` (sigmoid, +1 in the denominator)',
    options: '`variant`, `eps`',
    create: (_, o) => mccLoss(o),
  },
  dice: {
    modes: BOTH,
    summary: 'soft Dice (smp `DiceLoss`)',
    options: '`smooth`, `logLoss`, `classes`',
    create: (mode, o) => diceLoss({ mode, ...o }),
  },
  jaccard: {
    modes: BOTH,
    summary: 'soft Jaccard / IoU (smp `JaccardLoss`)',
    options: '`smooth`, `logLoss`, `classes`',
    create: (mode, o) => jaccardLoss({ mode, ...o }),
  },
  tversky: {
    modes: BOTH,
    summary: 'Tversky (smp `TverskyLoss`): `alpha` weighs false positives, `beta` false negatives',
    options: '`alpha`, `beta`, `gamma`, `smooth`',
    create: (mode, o) => tverskyLoss({ mode, ...o }),
  },
  focal: {
    modes: BOTH,
    summary: 'focal loss (smp `FocalLoss`), sigmoid per channel',
    options: '`gamma`, `alpha`, `normalized`, `reducedThreshold`',
    create: (mode, o) => focalLoss({ mode, ...o }),
  },
  lovasz: {
    modes: BOTH,
    summary: 'Lovász hinge (binary) / Lovász-softmax (multiclass) (smp `LovaszLoss`)',
    options: '`perImage`',
    create: (mode, o) => lovaszLoss({ mode, ...o }),
  },
};

/** Other names accepted for a loss. */
const ALIASES: Readonly<Record<string, string>> = { 'cross-entropy': 'ce' };

/** The mode of a model with `numLabels` logits. */
export function trainingMode(numLabels: number): TrainingMode {
  return numLabels === 1 ? 'binary' : 'multiclass';
}

function validNames(mode: TrainingMode): string {
  return Object.entries(LOSSES)
    .filter(([, e]) => e.modes.includes(mode))
    .map(([n]) => n)
    .join(', ');
}

/** The entry of one name, or a one-line error listing the valid names for the mode. */
export function lossEntry(name: string, mode: TrainingMode): LossEntry {
  const entry = LOSSES[ALIASES[name] ?? name];
  const kind = mode === 'binary' ? 'one-logit (binary) model' : 'multiclass model';
  if (!entry) throw new Error(`unknown loss '${name}' (valid for a ${kind}: ${validNames(mode)})`);
  if (!entry.modes.includes(mode)) {
    throw new Error(
      `loss '${name}' is not defined for a ${kind} (it is ${entry.modes.join('/')} only; valid here: ${validNames(mode)})`,
    );
  }
  return entry;
}

/**
 * The weighted sum of `terms` for a model with `numLabels` logits, every term leaving out pixels equal to
 * `ignoreIndex` (a term's own `ignoreIndex` wins).
 */
export function buildLoss(terms: LossTerm[], numLabels: number, ignoreIndex: number | null): LossFn {
  const mode = trainingMode(numLabels);
  if (!Array.isArray(terms) || terms.length === 0) {
    throw new Error(`loss: give at least one term (valid names: ${validNames(mode)})`);
  }
  const built: [LossFn, number][] = terms.map((term) => {
    if (term == null || typeof term !== 'object' || typeof term.name !== 'string') {
      throw new Error(
        `loss: each term needs a name (valid names: ${validNames(mode)}), got ${JSON.stringify(term)}`,
      );
    }
    const { name, weight, ...options } = term;
    const entry = lossEntry(name, mode);
    if (weight !== undefined && !(typeof weight === 'number' && Number.isFinite(weight))) {
      throw new Error(`loss '${name}': weight must be a finite number, got ${JSON.stringify(weight)}`);
    }
    try {
      return [entry.create(mode, { ignoreIndex, ...options }), weight ?? 1];
    } catch (e) {
      throw new Error(`loss '${name}': ${(e as Error).message}`);
    }
  });
  return built.length === 1 && built[0]![1] === 1 ? built[0]![0] : combineLosses(built);
}

/** The registry as a Markdown table (the README's loss table is this output). */
export function lossTableMarkdown(): string {
  const rows = Object.entries(LOSSES).map(
    ([name, e]) => `| \`${name}\` | ${e.modes.join(', ')} | ${e.summary} | ${e.options} |`,
  );
  return ['| name | modes | what | options |', '|---|---|---|---|', ...rows].join('\n');
}
