/** Moving the MiT encoder between checkpoints: a pretrained encoder into a fresh segmentation model, or a resume. */
import { tf } from '../../engine/index.ts';
import { loadSegformer } from './checkpoint.ts';
import { segformerKeys } from './keys.ts';
import type { Segformer } from './model.ts';

/** Copies the `segformer.encoder.*` weights of a checkpoint folder (full or encoder-only) into `model`. */
export async function copyEncoderWeights(model: Segformer, dir: string): Promise<number> {
  const prefix = segformerKeys.encoderPrefix;
  const { model: src, report } = await loadSegformer(dir, { allowPartial: true });
  try {
    const bad = [...report.missing, ...report.mismatched.map((m) => m.key)].filter((k) =>
      k.startsWith(prefix),
    );
    if (bad.length > 0)
      throw new Error(`${dir}: encoder weights missing or mis-shaped: ${bad.slice(0, 5).join(', ')}`);
    const from = src.namedWeights();
    let n = 0;
    for (const [key, v] of model.namedWeights()) {
      if (!key.startsWith(prefix)) continue;
      const s = from.get(key);
      if (!s || !tf.util.arraysEqual(s.shape, v.shape))
        throw new Error(`${dir}: '${key}' does not fit the encoder (shape [${s?.shape}] vs [${v.shape}])`);
      v.assign(s);
      n++;
    }
    return n;
  } finally {
    src.dispose();
  }
}
