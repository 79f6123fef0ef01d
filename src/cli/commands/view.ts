import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';

const USAGE = `slideseg view SLIDE...|OUTDIR [--port P] [--host 127.0.0.1] [--model DIR|model.onnx]

Starts a local web viewer: the slides as Deep Zoom tiles in OpenSeadragon and, for an inference output folder
(one slideseg infer run, or a cohort's folder of runs), the predicted labels as a coloured overlay (opacity
slider, class legend with areas), the GeoJSON polygons as a layer and the list of slides. SLIDE: any slide
slideseg reads (.svs/.tif/.ome.tif/.ome.zarr/.png/.jpg or http(s) URL). Only the given slides are served.

  --port P     port (default 8000; 0 = any free port)
  --host H     address to listen on (default 127.0.0.1: this machine only)
  --model M    a SegFormer checkpoint folder (exported to ONNX once) or .onnx file the page can run in the
               browser (onnxruntime-web, wasm) on the visible region
  --model-mpp N  resolution the model runs at, µm/pixel (default: the inference run's, else 0.5)`;

export const command: Command = {
  name: 'view',
  summary: 'Look at slides and their predictions in the browser (Deep Zoom, OpenSeadragon)',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        model: { type: 'string' },
        'model-mpp': { type: 'string' },
      },
    });
    if (positionals.length === 0) throw new UsageError(`view: expected SLIDE... or OUTDIR\n${USAGE}`);
    const port = Number(values.port ?? 8000);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError(`--port must be an integer from 0 to 65535 (got ${values.port})`);
    const modelMpp = Number(values['model-mpp'] ?? 0.5);
    if (!(modelMpp > 0))
      throw new UsageError(`--model-mpp must be a positive number (got ${values['model-mpp']})`);
    const { collectSlides, loadViewModel, startViewer } = await import('../../view/index.ts');
    const slides = await collectSlides(positionals);
    const model = values.model ? await loadViewModel(values.model, modelMpp) : undefined;
    const viewer = await startViewer({ slides, port, host: values.host ?? '127.0.0.1', model });
    console.log(`slideseg view: ${slides.length} slide(s) at ${viewer.url} (Ctrl-C to stop)`);
    await new Promise<void>((done) => {
      const stop = () => {
        viewer.close().then(done, done);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
