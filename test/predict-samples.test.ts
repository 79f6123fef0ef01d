/** The bundled demo: the README's quick-start command works on samples/ and the tiny model learnt its task. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { readImageRGB } from '../src/image/index.ts';
import { predict } from '../src/infer/predict.ts';
import { ROOT } from './fixtures.ts';

const model = join(ROOT, 'samples', 'segformer-tiny');
const image = join(ROOT, 'samples', 'image.png');

test('samples: checkpoint under 200 KB, image 256x256 RGB', async () => {
  const bytes = readdirSync(model).reduce((sum, f) => sum + statSync(join(model, f)).size, 0);
  assert.ok(bytes < 200 * 1024, `segformer-tiny is ${bytes} bytes`);
  const meta = await sharp(image).metadata();
  assert.deepEqual([meta.width, meta.height, meta.format], [256, 256, 'png']);
});

test('quick start: predict writes mask and overlay; the demo model separates glass from tissue', async () => {
  const out = mkdtempSync(join(tmpdir(), 'slideseg-samples-'));
  const r = await predict({
    model,
    image,
    mask: join(out, 'mask.png'),
    overlay: join(out, 'overlay.png'),
    log: () => {},
  });
  assert.deepEqual(r.labels, ['background', 'tissue', 'hematoxylin-rich']);
  assert.equal((await sharp(join(out, 'mask.png')).metadata()).width, 256);
  assert.ok((await sharp(join(out, 'overlay.png')).metadata()).width! > 256, 'overlay has a legend');

  // The colour rule the model was trained on (samples/make-demo.ts), for its clearest case: glass.
  const rgb = await readImageRGB(image);
  let glass = 0;
  let glassAgree = 0;
  let tissue = 0;
  let tissueAgree = 0;
  for (let i = 0; i < r.mask.length; i++) {
    const [red, g, b] = [rgb.data[i * 3]!, rgb.data[i * 3 + 1]!, rgb.data[i * 3 + 2]!];
    const lo = Math.min(red, g, b);
    const hi = Math.max(red, g, b);
    if (lo > 215 && hi - lo < 25) {
      glass++;
      if (r.mask[i] === 0) glassAgree++;
    } else if (hi - lo > 60) {
      tissue++;
      if (r.mask[i] !== 0) tissueAgree++;
    }
  }
  assert.ok(glass > 1000 && tissue > 1000, `both kinds of pixel present (${glass} glass, ${tissue} stained)`);
  assert.ok(glassAgree / glass > 0.9, `glass called background: ${((100 * glassAgree) / glass).toFixed(1)}%`);
  assert.ok(
    tissueAgree / tissue > 0.9,
    `stained called tissue: ${((100 * tissueAgree) / tissue).toFixed(1)}%`,
  );
});
