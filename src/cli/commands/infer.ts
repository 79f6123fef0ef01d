import { parseArgs } from 'node:util';
import type { InferBackend } from '../../infer/tile-runner.ts';
import type { TestTimeAugmentation } from '../../infer/tta.ts';
import { type Command, UsageError } from '../command.ts';

const USAGE = `slideseg infer SLIDE --model DIR|model.onnx --out OUT [options]

Segments a whole slide: tiles where there is tissue, blends overlapping tile probabilities, writes
OUT/<name>.ome.zarr (labels/segmentation, value = class + 1, 0 = not analysed), OUT/<name>.overlay.png,
OUT/<name>.geojson (QuPath polygons, level-0 pixels) and OUT/<name>.summary.json.

  --model DIR|FILE     SegFormer checkpoint folder (exported to ONNX once, cached in OUT/.cache) or an .onnx file
  --out DIR            output folder
  --mpp N              output resolution in µm/pixel (default 0.5)
  --tile N             tile size in pixels (default 512)
  --overlap N          tile overlap in pixels (default 64)
  --tta MODE           test-time augmentation: none (default), flip (4 views per tile) or d4 (8)
  --batch N            tiles per model run (default 1)
  --runtime onnx|tfjs  ONNX Runtime (default) or TF.js (on the global --backend)
  --resume             keep chunks of an interrupted run
  --slide-mpp N        level-0 µm/pixel when the slide does not state it
  --tissue auto|all    tile only tissue (default) or everything
  --name NAME          base name of the outputs (default: slide file name)`;

export function numberOpt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name}: not a number: ${v}`);
  return n;
}

export const command: Command = {
  name: 'infer',
  summary: 'Segment a whole slide (ONNX Runtime; OME-Zarr labels, overlay PNG, GeoJSON, summary)',
  usage: USAGE,
  async run(args) {
    const { inferSlide } = await import('../../infer/slide-infer.ts');
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        out: { type: 'string' },
        mpp: { type: 'string' },
        tile: { type: 'string' },
        overlap: { type: 'string' },
        tta: { type: 'string' },
        batch: { type: 'string' },
        runtime: { type: 'string' },
        resume: { type: 'boolean' },
        'slide-mpp': { type: 'string' },
        tissue: { type: 'string' },
        name: { type: 'string' },
      },
    });
    if (positionals.length !== 1) throw new UsageError(`infer: expected one SLIDE\n${USAGE}`);
    if (!values.model || !values.out) throw new UsageError(`infer: --model and --out are required\n${USAGE}`);
    const backend = (values.runtime ?? 'onnx') as InferBackend;
    if (backend !== 'onnx' && backend !== 'tfjs') throw new UsageError(`--runtime must be onnx or tfjs`);
    const tissue = (values.tissue ?? 'auto') as 'auto' | 'all';
    if (tissue !== 'auto' && tissue !== 'all') throw new UsageError(`--tissue must be auto or all`);
    const summary = await inferSlide(positionals[0]!, {
      model: values.model,
      out: values.out,
      mpp: numberOpt('mpp', values.mpp),
      tile: numberOpt('tile', values.tile),
      overlap: numberOpt('overlap', values.overlap),
      tta: values.tta as TestTimeAugmentation | undefined,
      batch: numberOpt('batch', values.batch),
      backend,
      resume: values.resume ?? false,
      slideMpp: numberOpt('slide-mpp', values['slide-mpp']),
      tissue,
      name: values.name,
    });
    const areas = Object.entries(summary.areas)
      .map(([k, v]) => `${k} ${(v.um2 / 1e6).toFixed(3)} mm²`)
      .join(', ');
    console.log(
      `${summary.name}: ${summary.tiles.computed} tiles in ${summary.timings.inferenceSeconds.toFixed(1)} s ` +
        `(${summary.tilesPerSecond.toFixed(2)} tiles/s); ${areas}; summary ${summary.outputs.summary}`,
    );
    return 0;
  },
};
