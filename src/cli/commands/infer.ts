import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';
import { SLIDE_JOB_OPTIONS, slideJobOptions } from '../slide-job-options.ts';

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
        ...SLIDE_JOB_OPTIONS,
        out: { type: 'string' },
        resume: { type: 'boolean' },
        name: { type: 'string' },
        quiet: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    });
    if (positionals.length !== 1) throw new UsageError(`infer: expected one SLIDE\n${USAGE}`);
    if (!values.model || !values.out) throw new UsageError(`infer: --model and --out are required\n${USAGE}`);
    const summary = await inferSlide(positionals[0]!, {
      ...slideJobOptions(values, (p) => p),
      out: values.out,
      resume: values.resume ?? false,
      name: values.name,
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
