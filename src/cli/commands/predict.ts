/**
 * `slideseg predict`: one image through a SegFormer checkpoint folder. Writes the raw stride-4 logits
 * (.npy, NCHW, exactly the decoder output), the class mask (logits bilinearly upsampled to the image size
 * with align_corners=False, then argmax: Hugging Face's `post_process_semantic_segmentation`) and an
 * overlay with a legend. Whole slides go through `slideseg infer`, which tiles them.
 */
import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';

const USAGE = `slideseg predict --model DIR IMAGE [--logits OUT.npy] [--mask OUT.png] [--overlay OUT.png] [options]

Segments one image (PNG, JPEG, TIFF) with a Hugging Face SegFormer folder
(config.json, model.safetensors, preprocessor_config.json) and prints the share of each class.

  --model DIR          checkpoint folder
  --logits OUT.npy     decoder logits, float32 NCHW [1, num_labels, ceil(H/4), ceil(W/4)]
  --mask OUT.png       class index per pixel (8-bit grey PNG, image size)
  --overlay OUT.png    classes blended over the image, with a legend
  --alpha A            overlay opacity (default 0.5)
  --threshold P        foreground probability threshold of a one-logit (binary) model (default 0.5)
  --strict             refuse images with transparency or 16-bit samples instead of converting them
  --backend B          wasm (default), cpu or tensorflow
  --verbose            print the backend, model size and timings
  --json               print the result (size, labels, pixels per class, files written) as JSON

Images are read as stored (no colour management). An opaque alpha channel is dropped; transparent pixels are
composited on white; 16-bit samples are scaled by 1/257. Each conversion is reported on stderr.`;

function parseAlpha(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const a = Number(v);
  if (!(a >= 0 && a <= 1)) throw new UsageError(`--alpha: expected a number in [0, 1], got ${v}`);
  return a;
}

export const command: Command = {
  name: 'predict',
  summary: 'Segment one image with a SegFormer folder (logits .npy, mask PNG, overlay PNG)',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        logits: { type: 'string' },
        mask: { type: 'string' },
        overlay: { type: 'string' },
        alpha: { type: 'string' },
        strict: { type: 'boolean' },
        backend: { type: 'string' },
        verbose: { type: 'boolean' },
        json: { type: 'boolean' },
        threshold: { type: 'string' },
      },
    });
    const threshold = values.threshold === undefined ? undefined : Number(values.threshold);
    if (threshold !== undefined && !(threshold > 0 && threshold < 1))
      throw new UsageError(`--threshold: a probability in (0, 1), got ${values.threshold}`);
    if (!values.model) throw new UsageError('--model DIR is required (slideseg predict --help)');
    if (positionals.length !== 1) {
      throw new UsageError(`expected one IMAGE, got ${positionals.length} (slideseg predict --help)`);
    }
    const { predict } = await import('../../infer/predict.ts');
    const result = await predict({
      threshold,
      model: values.model,
      image: positionals[0]!,
      logits: values.logits,
      mask: values.mask,
      overlay: values.overlay,
      alpha: parseAlpha(values.alpha),
      strict: values.strict,
      backend: values.backend,
      verbose: values.verbose || process.env.SLIDESEG_VERBOSE === '1',
    });
    if (values.json) {
      const { width, height, labels, counts, notes, backend } = result;
      const written = { logits: values.logits, mask: values.mask, overlay: values.overlay };
      console.log(
        JSON.stringify({ image: positionals[0], width, height, labels, counts, notes, backend, written }),
      );
      return 0;
    }
    const total = result.width * result.height;
    const shares = result.counts
      .map((n, k) => [k, n] as const)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${result.labels[k] ?? ''} ${((100 * n) / total).toFixed(1)}%`.replace('  ', ' '))
      .join(', ');
    const written = [values.logits, values.mask, values.overlay].filter(Boolean);
    console.log(
      `${positionals[0]} (${result.width}x${result.height}) with ${values.model}: classes ${shares}` +
        (written.length > 0 ? `; wrote ${written.join(', ')}` : ''),
    );
    return 0;
  },
};
