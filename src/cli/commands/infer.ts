import { parseArgs } from 'node:util';
import type { TestTimeAugmentation } from '../../core/tta.ts';
import type { InferBackend } from '../../infer/tile-runner.ts';
import { type Command, UsageError } from '../command.ts';
import { numberOption } from '../options.ts';

const USAGE = `slideseg infer SLIDE --model DIR|model.onnx --out OUT [options]

Segments a whole slide: tiles where there is tissue, blends overlapping tile probabilities, writes
OUT/<name>.ome.zarr (an OME-NGFF image of the slide on the label grid, µm units, with labels/segmentation:
value = class + 1, 0 = not analysed), OUT/<name>.overlay.png, OUT/<name>.geojson (QuPath polygons traced at the
label grid's resolution, level-0 pixels) and OUT/<name>.summary.json. Look at them with slideseg view OUT.

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
  --name NAME          base name of the outputs (default: slide file name)
  --image full|overview  OME-Zarr image under the labels: the slide at the output mpp with its pyramid (default;
                       about 6x the size of a JPEG-compressed slide) or only levels of at most 2048 px (a few MB)
  --ngff 0.4|0.5       OME-NGFF 0.4 on Zarr v2 (default) or 0.5 on Zarr v3
  --polygons MODE      objects (default: one feature per connected region, with its area), classes (one
                       MultiPolygon per class) or none
  --polygon-precision N  decimals of the polygon coordinates (default 2)
  --polygon-simplify UM  Douglas-Peucker tolerance in µm (default 0: exact pixel outlines)
  --quiet              no progress lines
  --json               print the summary (summary.json's content) as JSON`;

/** A numeric flag, checked against its range in OPTION_RANGES (a usage error, exit 2, when outside). */
export function numberOpt(name: string, v: string | undefined): number | undefined {
  return numberOption(name, v);
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
        image: { type: 'string' },
        ngff: { type: 'string' },
        polygons: { type: 'string' },
        'polygon-precision': { type: 'string' },
        'polygon-simplify': { type: 'string' },
        quiet: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    });
    if (positionals.length !== 1) throw new UsageError(`infer: expected one SLIDE\n${USAGE}`);
    if (!values.model || !values.out) throw new UsageError(`infer: --model and --out are required\n${USAGE}`);
    const backend = (values.runtime ?? 'onnx') as InferBackend;
    if (backend !== 'onnx' && backend !== 'tfjs') throw new UsageError(`--runtime must be onnx or tfjs`);
    const tissue = (values.tissue ?? 'auto') as 'auto' | 'all';
    if (tissue !== 'auto' && tissue !== 'all') throw new UsageError(`--tissue must be auto or all`);
    const image = (values.image ?? 'full') as 'full' | 'overview';
    if (image !== 'full' && image !== 'overview') throw new UsageError(`--image must be full or overview`);
    const ngff = values.ngff ?? '0.4';
    if (ngff !== '0.4' && ngff !== '0.5') throw new UsageError(`--ngff must be 0.4 or 0.5`);
    const polygons = (values.polygons ?? 'objects') as 'none' | 'classes' | 'objects';
    if (!['none', 'classes', 'objects'].includes(polygons))
      throw new UsageError(`--polygons must be none, classes or objects`);
    const precision = numberOpt('polygon-precision', values['polygon-precision']);
    if (precision !== undefined && (!Number.isInteger(precision) || precision < 0 || precision > 10))
      throw new UsageError(`--polygon-precision must be an integer from 0 to 10`);
    const simplify = numberOpt('polygon-simplify', values['polygon-simplify']);
    if (simplify !== undefined && simplify < 0) throw new UsageError(`--polygon-simplify must be >= 0 (µm)`);
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
      image,
      zarrFormat: ngff === '0.5' ? 3 : 2,
      polygons,
      polygonPrecision: precision,
      polygonSimplify: simplify,
      ...(values.quiet ? { log: null } : {}),
    });
    if (values.json) {
      console.log(JSON.stringify(summary, null, 2));
      return 0;
    }
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
