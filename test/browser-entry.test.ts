/**
 * `slideseg/browser` as a bundler sees it: esbuild bundles src/browser.ts for the browser platform (a Node built-in
 * anywhere in its import graph fails the build), and the bundle runs in headless Chromium (Debian's /usr/bin/chromium):
 * golden loss values and gradients (segmentation_models_pytorch, losses.json), a golden confusion-matrix case
 * (scikit-learn, metrics.json) and a SegFormer forward, all on the TF.js cpu backend inside the page.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { build } from 'esbuild';
import { launchChromium } from './browser-helpers.ts';
import { fixture, ROOT } from './fixtures.ts';

test('esbuild bundles slideseg/browser for the browser and it computes golden losses and metrics in Chromium', async (t) => {
  const result = await build({
    entryPoints: [join(ROOT, 'src', 'browser.ts')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'slideseg',
    write: false,
    metafile: true,
    logLevel: 'silent',
    // An optional peer, imported lazily by OnnxWebSegmenter; the page here does not load it.
    external: ['onnxruntime-web'],
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(
    !inputs.some((p) => p.startsWith('node:') || p.includes('/src/slide/')),
    'no Node built-ins, no readers',
  );
  assert.ok(
    inputs.some((p) => p.includes('register_all_gradients')),
    'gradients registered from tfjs-core',
  );
  const bundle = result.outputFiles[0]!.text;

  const browser = await launchChromium(t);
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.setContent('<!doctype html><html><body></body></html>');
  await page.addScriptTag({ content: bundle });

  const losses = JSON.parse(readFileSync(fixture('losses', 'losses.json'), 'utf8')).cases.filter(
    (c: { loss: string }) => c.loss === 'DiceLoss' || c.loss === 'FocalLoss',
  );
  assert.ok(losses.length >= 6);
  const metrics = JSON.parse(readFileSync(fixture('metrics', 'metrics.json'), 'utf8'));
  const seg = (metrics.cases ?? metrics).find((c: { kind: string }) => c.kind === 'segmentation');
  assert.ok(seg, 'a segmentation case in metrics.json');

  // The page code is a string: tsx's transform of a function here would reference helpers the page lacks.
  const out: {
    backend: string;
    lossResults: { name: string; value: number; grad: number[] }[];
    matrix: number[];
    mIoU: number;
    logitsShape: number[];
  } = await page.evaluate(`(async () => {
    const { losses, seg } = ${JSON.stringify({ losses, seg })};
    const s = globalThis.slideseg;
    const backend = await s.ready({ backend: 'cpu' });
    const tf = s.tf;
    const camel = (p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c) => c.toUpperCase()), v]));
    const nhwc = (x) => (x.rank === 4 ? tf.transpose(x, [0, 2, 3, 1]) : x);
    const lossResults = losses.map((c) => {
      const factory = c.loss === 'DiceLoss' ? s.diceLoss : s.focalLoss;
      const loss = factory(camel(c.params));
      const target = nhwc(tf.tensor(c.target.data, c.target.shape, c.target.dtype === 'int64' ? 'int32' : 'float32'));
      const input = nhwc(tf.tensor(c.input.data, c.input.shape, 'float32'));
      const { value, grad } = tf.valueAndGrad((x) => loss(x, target))(input);
      const back = grad.rank === 4 ? tf.transpose(grad, [0, 3, 1, 2]) : grad;
      return { name: c.name, value: value.dataSync()[0], grad: Array.from(back.dataSync()) };
    });
    const cm = new s.ConfusionMatrix(seg.num_classes, { ignoreIndex: seg.ignore_index });
    cm.update(tf.tensor(seg.pred.data, seg.pred.shape, 'int32'), tf.tensor(seg.target.data, seg.target.shape, 'int32'));
    const scores = cm.compute();
    const model = new s.Segformer(s.segformerPreset('b0', { numLabels: 3 }), { seed: 1 });
    const logits = model.forward(tf.zeros([1, 64, 64, 3])).logits;
    return { backend, lossResults, matrix: Array.from(cm.counts), mIoU: scores.mIoU, logitsShape: logits.shape };
  })()`);
  assert.deepEqual(errors, [], 'page errors');
  assert.equal(out.backend, 'cpu');
  for (const [i, r] of out.lossResults.entries()) {
    const c = losses[i];
    assert.ok(
      Math.abs(r.value - c.value) <= 1e-5 * Math.max(1, Math.abs(c.value)),
      `${r.name}: ${r.value} vs ${c.value}`,
    );
    const scale = Math.max(...c.grad.data.map(Math.abs));
    const worst = Math.max(...r.grad.map((g: number, k: number) => Math.abs(g - c.grad.data[k])));
    assert.ok(worst <= 1e-4 * scale, `${r.name}: gradient error ${worst} of ${scale}`);
  }
  assert.deepEqual(out.matrix, seg.confusion_matrix.flat());
  assert.ok(Math.abs(out.mIoU - seg.mIoU) <= 1e-9, `mIoU ${out.mIoU} vs ${seg.mIoU}`);
  assert.deepEqual(out.logitsShape, [1, 16, 16, 3]);
});
