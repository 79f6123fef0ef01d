/**
 * The model the viewer page runs in the browser (onnxruntime-web): an .onnx file as is, or a SegFormer checkpoint
 * folder exported to ONNX once (cached beside the checkpoint, keyed by its config and weights). The page gets the
 * ONNX bytes and a small description: class names and colours, the per-channel pixel transform of the
 * preprocessor config (value = pixel · scale + offset, as the whole-slide runner applies it) and the resolution
 * the model is run at.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { classColour } from '../core/palette.ts';
import { defaultPreprocessorConfig, loadPreprocessorConfig } from '../models/segformer/preprocessor.ts';
import { exportSegformerOnnx } from '../onnx/index.ts';

export interface ViewModelMeta {
  classes: { name: string; rgb: [number, number, number] }[];
  scale: [number, number, number];
  offset: [number, number, number];
  /** µm per pixel the model is run at. */
  mpp: number;
}

export interface ViewModel {
  onnx: string;
  meta: ViewModelMeta;
}

/**
 * Prepares `model` (folder or .onnx) for the page; `mpp` is the resolution it was trained for. A folder's export
 * is cached in `cacheDir` (default `<model>/.onnx-cache`, as `slideseg infer` does).
 */
export async function loadViewModel(model: string, mpp: number, cacheDir?: string): Promise<ViewModel> {
  if (!existsSync(model)) throw new Error(`${model}: model not found`);
  if (!(mpp > 0)) throw new Error(`model mpp must be positive, got ${mpp}`);
  const isDir = (await stat(model)).isDirectory();
  const dir = isDir ? model : dirname(model);
  let onnx = model;
  if (isDir) {
    const config = await readFile(join(model, 'config.json')).catch(() => {
      throw new Error(`${model}: not a SegFormer checkpoint folder (no config.json) and not an .onnx file`);
    });
    const weights = join(model, 'model.safetensors');
    const st = existsSync(weights) ? await stat(weights) : null;
    const key = createHash('sha1')
      .update(config)
      .update(`${st?.size}:${st?.mtimeMs}`)
      .digest('hex')
      .slice(0, 12);
    const cache = cacheDir ?? join(model, '.onnx-cache');
    onnx = join(cache, `model-${key}.onnx`);
    if (!existsSync(onnx)) {
      await mkdir(cache, { recursive: true });
      await exportSegformerOnnx(model, onnx);
    }
  } else if (!/\.onnx$/i.test(model)) {
    throw new Error(`${model}: expected a SegFormer checkpoint folder or an .onnx file`);
  }
  const pp = existsSync(join(dir, 'preprocessor_config.json'))
    ? await loadPreprocessorConfig(dir)
    : defaultPreprocessorConfig();
  const r = pp.do_rescale ? pp.rescale_factor : 1;
  const scale: [number, number, number] = [r, r, r];
  const offset: [number, number, number] = [0, 0, 0];
  if (pp.do_normalize) {
    for (let c = 0; c < 3; c++) {
      scale[c] = r / pp.image_std[c]!;
      offset[c] = -pp.image_mean[c]! / pp.image_std[c]!;
    }
  }
  let id2label: Record<string, string> = {};
  try {
    id2label = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).id2label ?? {};
  } catch {
    // An .onnx file alone: classes are named by index.
  }
  const count = Math.max(1, Object.keys(id2label).length);
  const classes = Array.from({ length: count }, (_, c) => ({
    name: id2label[String(c)] ?? `class_${c}`,
    rgb: classColour(c + 1),
  }));
  return { onnx, meta: { classes, scale, offset, mpp } };
}
