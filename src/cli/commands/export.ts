import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';

const usage = `slideseg export --model DIR --out DIR [--fp16] [--opset 17] [--fold-decoder] [--json]

Writes the ONNX graph of a Hugging Face SegformerForSemanticSegmentation checkpoint folder
(config.json + model.safetensors or model.safetensors.index.json).
  input  pixel_values  float32 [batch, 3, height, width]   (any batch and size)
  output logits        float32 [batch, num_labels, ceil(height/4), ceil(width/4)]

Options:
  --model DIR     checkpoint folder
  --out DIR       output folder: writes DIR/model.onnx
  --fp16          store weights as float16 (half the size; still computes in float32)
  --opset N       ONNX opset, 17..21 (default 17; from 20 GELU is the Gelu op)
  --fold-decoder  fold the decoder's per-stage projections into the fuse conv (same function up to
                  float rounding, about half the work of MiT-B0; the default graph mirrors PyTorch)
  --json          print the result as JSON`;

export const command: Command = {
  name: 'export',
  summary: 'Export a SegFormer checkpoint folder to ONNX (dynamic batch and size)',
  usage,
  async run(args) {
    const { exportSegformerOnnx } = await import('../../onnx/index.ts');
    const { values } = parseArgs({
      args,
      options: {
        model: { type: 'string' },
        out: { type: 'string' },
        fp16: { type: 'boolean', default: false },
        'fold-decoder': { type: 'boolean', default: false },
        opset: { type: 'string', default: '17' },
        json: { type: 'boolean' },
      },
    });
    if (!values.model) throw new UsageError('--model DIR is required');
    if (!values.out) throw new UsageError('--out DIR is required (the folder model.onnx is written to)');
    if (!statSync(values.model, { throwIfNoEntry: false })?.isDirectory()) {
      throw new UsageError(`${values.model}: not a checkpoint folder`);
    }
    const opset = Number(values.opset);
    if (!Number.isInteger(opset)) throw new UsageError(`--opset: '${values.opset}' is not an integer`);
    const started = performance.now();
    mkdirSync(values.out, { recursive: true });
    const file = join(values.out, 'model.onnx');
    const result = await exportSegformerOnnx(values.model, file, {
      fp16: values.fp16,
      opset,
      foldDecoder: values['fold-decoder'],
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (values.json) {
      console.log(JSON.stringify({ file, ...result, seconds: Number(seconds) }, null, 2));
      return 0;
    }
    console.log(
      `${file}: ${(result.bytes / 2 ** 20).toFixed(1)} MiB, ${result.parameters.toLocaleString('en')} parameters, ` +
        `${result.nodes} nodes, opset ${result.opset}, ${result.numLabels} labels${values.fp16 ? ', fp16 weights' : ''}${values['fold-decoder'] ? ', folded decoder' : ''} (${seconds} s)`,
    );
    return 0;
  },
};
