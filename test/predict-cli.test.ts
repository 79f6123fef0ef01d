/** `slideseg predict` against the PyTorch golden logits, plus its one-line errors for bad models and inputs. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { command } from '../src/cli/commands/predict.ts';
import { predict } from '../src/infer/predict.ts';
import { readNpy } from '../src/io/npy.ts';
import { classColour } from '../src/viz/index.ts';
import { fixture, needs, ROOT } from './fixtures.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'slideseg-predict-'));
const quiet = () => {};

/** Max |a − b| between our NCHW logits and image n of the fixture's NCHW logits. */
function maxDiff(ours: Float32Array, golden: Float32Array, n: number): number {
  const per = ours.length;
  let worst = 0;
  for (let i = 0; i < per; i++) worst = Math.max(worst, Math.abs(ours[i]! - golden[n * per + i]!));
  return worst;
}

/** PyTorch's bilinear upsampling (align_corners=False) of CHW logits, then argmax and the top-2 margin. */
function referenceMask(logits: Float32Array, C: number, h: number, w: number, H: number, W: number) {
  const src = (o: number, inSize: number, outSize: number) => {
    const s = Math.max(0, ((o + 0.5) * inSize) / outSize - 0.5);
    const i0 = Math.min(Math.floor(s), inSize - 1);
    const i1 = Math.min(i0 + 1, inSize - 1);
    return [i0, i1, s - i0] as const;
  };
  const mask = new Int32Array(H * W);
  const margin = new Float64Array(H * W);
  for (let y = 0; y < H; y++) {
    const [y0, y1, fy] = src(y, h, H);
    for (let x = 0; x < W; x++) {
      const [x0, x1, fx] = src(x, w, W);
      let best = -Infinity;
      let second = -Infinity;
      for (let c = 0; c < C; c++) {
        const at = (yy: number, xx: number) => logits[(c * h + yy) * w + xx]!;
        const v =
          (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
          fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
        if (v > best) {
          second = best;
          best = v;
          mask[y * W + x] = c;
        } else if (v > second) second = v;
      }
      margin[y * W + x] = best - second;
    }
  }
  return { mask, margin };
}

for (const model of ['segformer-tiny', 'segformer-tiny-odd', 'segformer-b0']) {
  test(`${model}: predict reproduces the PyTorch logits within 1e-4 and the upsampled argmax mask`, {
    skip: needs(['segformer', model]),
  }, async () => {
    const golden = await readNpy(fixture('segformer', model, 'logits.npy'));
    const [N, C, h, w] = golden.shape as [number, number, number, number];
    for (let n = 0; n < N; n++) {
      const maskPath = join(dir, `${model}-${n}.png`);
      const r = await predict({
        model: fixture('segformer', model),
        image: fixture('segformer', model, `image${n}.png`),
        mask: maskPath,
        log: quiet,
      });
      assert.deepEqual(r.logits.shape, [1, C, h, w]);
      const diff = maxDiff(r.logits.data, golden.data as Float32Array, n);
      assert.ok(diff <= 1e-4, `image${n}: max |logit diff| ${diff}`);

      const ref = referenceMask(
        (golden.data as Float32Array).subarray(n * C * h * w, (n + 1) * C * h * w),
        C,
        h,
        w,
        r.height,
        r.width,
      );
      const written = await sharp(maskPath).extractChannel(0).raw().toBuffer();
      let disagreements = 0;
      for (let i = 0; i < ref.mask.length; i++) {
        assert.equal(written[i], r.mask[i], `mask PNG pixel ${i}`);
        // Pixels whose two best classes are within the logit tolerance may legitimately flip.
        if (r.mask[i] !== ref.mask[i] && ref.margin[i]! > 2e-4) disagreements++;
      }
      assert.equal(disagreements, 0, `image${n}: mask differs from the reference argmax`);
      assert.equal(
        r.counts.reduce((a, b) => a + b, 0),
        r.width * r.height,
      );
    }
  });
}

test('CLI as a child process: logits .npy, mask and overlay with legend; --verbose names the backend', {
  skip: needs(['segformer', 'segformer-b0']),
}, async () => {
  const model = fixture('segformer', 'segformer-b0');
  const logits = join(dir, 'cli-logits.npy');
  const mask = join(dir, 'cli-mask.png');
  const over = join(dir, 'cli-overlay.png');
  const { stdout, stderr } = await run(
    process.execPath,
    [
      join(ROOT, 'bin', 'slideseg.js'),
      'predict',
      '--model',
      model,
      fixture('segformer', 'segformer-b0', 'image0.png'),
    ].concat(['--logits', logits, '--mask', mask, '--overlay', over, '--backend', 'cpu', '--verbose']),
    { cwd: ROOT },
  );
  assert.match(stderr, /backend: cpu/);
  assert.match(stdout, /\(160x128\).*classes .*%; wrote /);
  const golden = await readNpy(fixture('segformer', 'segformer-b0', 'logits.npy'));
  const ours = await readNpy(logits);
  assert.equal(ours.dtype, 'float32');
  assert.deepEqual(ours.shape, [1, 5, 32, 40]);
  const diff = maxDiff(ours.data as Float32Array, golden.data as Float32Array, 0);
  assert.ok(diff <= 1e-4, `max |logit diff| ${diff}`);

  // Overlay: image blended at 0.5 where the class is not background, legend panel on the right.
  const maskPx = await sharp(mask).extractChannel(0).raw().toBuffer();
  const image = await sharp(fixture('segformer', 'segformer-b0', 'image0.png'))
    .removeAlpha()
    .raw()
    .toBuffer();
  const { data, info } = await sharp(over).raw().toBuffer({ resolveWithObject: true });
  assert.ok(
    info.width > 160 && info.height >= 128,
    `overlay ${info.width}x${info.height} has a legend panel`,
  );
  let checked = 0;
  for (let y = 0; y < 128; y++)
    for (let x = 0; x < 160; x++) {
      const k = maskPx[y * 160 + x]!;
      const o = (y * info.width + x) * info.channels;
      for (let c = 0; c < 3; c++) {
        const base = image[(y * 160 + x) * 3 + c]!;
        const want = k === 0 ? base : Math.round(0.5 * base + 0.5 * classColour(k)[c]!);
        assert.equal(data[o + c], want, `overlay pixel (${x}, ${y}) class ${k}`);
      }
      checked++;
    }
  assert.equal(checked, 160 * 128);
});

test('CLI errors are one line and exit 1', async () => {
  const r = await run(
    process.execPath,
    [join(ROOT, 'bin', 'slideseg.js'), 'predict', '--model', join(dir, 'no-such-model'), 'x.png'],
    { cwd: ROOT },
  ).then(
    () => assert.fail('should exit non-zero'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /no-such-model: model folder not found/);
});

test('bad models and inputs are refused with messages naming the file', async () => {
  const tiny = fixture('segformer', 'segformer-tiny');
  const image = fixture('segformer', 'segformer-tiny', 'image0.png');
  const go = (model: string, img = image, extra: string[] = []) =>
    command.run(['--model', model, img, ...extra]);
  const folder = (name: string, files: Record<string, string | Buffer>) => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    for (const [f, content] of Object.entries(files)) writeFileSync(join(d, f), content);
    return d;
  };
  const config = readFileSync(join(tiny, 'config.json'), 'utf8');
  const weights = readFileSync(join(tiny, 'model.safetensors'));

  await assert.rejects(go(join(dir, 'missing')), /missing: model folder not found/);
  await assert.rejects(go(image), /must be a checkpoint folder, not a file/);
  await assert.rejects(go(folder('empty', {})), /empty: no config\.json/);
  await assert.rejects(
    go(folder('noweights', { 'config.json': config })),
    /noweights: no model\.safetensors/,
  );
  await assert.rejects(
    go(folder('corrupt', { 'config.json': config, 'model.safetensors': weights.subarray(0, 5000) })),
    /corrupt[/\\]model\.safetensors/,
  );
  const wider = JSON.parse(config);
  wider.hidden_sizes = [16, 16, 24, 32];
  await assert.rejects(
    go(folder('mismatch', { 'config.json': JSON.stringify(wider), 'model.safetensors': weights })),
    /does not match the SegFormer config/,
  );
  await assert.rejects(go(folder('badjson', { 'config.json': '{oops' })), /badjson[/\\]config\.json/);

  await assert.rejects(go(tiny, join(dir, 'nothing.png')), /nothing\.png: cannot read image: no such file/);
  const text = join(dir, 'notes.png');
  writeFileSync(text, 'not an image');
  await assert.rejects(go(tiny, text), /notes\.png: not a readable image/);

  // Transparency and 16-bit: converted and reported by default, refused with --strict.
  const rgba = join(dir, 'rgba.png');
  await sharp(image).ensureAlpha(0.5).png().toFile(rgba);
  await assert.rejects(go(tiny, rgba, ['--strict']), /rgba\.png: image has transparent pixels/);
  const notes: string[] = [];
  const r = await predict({ model: tiny, image: rgba, log: (l) => notes.push(l) });
  assert.match(notes.join('\n'), /rgba\.png: transparent pixels composited on white/);
  assert.equal(r.logits.shape[1], 3);
  const deep = join(dir, 'deep.png');
  await sharp(image).toColourspace('rgb16').png().toFile(deep);
  await assert.rejects(go(tiny, deep, ['--strict']), /deep\.png: 16-bit image refused/);

  // An image whose attention would not fit is refused from its header, before decoding.
  const huge = join(dir, 'huge.png');
  await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#fff' } })
    .png()
    .toFile(huge);
  await assert.rejects(
    go(tiny, huge),
    /huge\.png: 4000x4000 is too large for one forward pass .*slideseg infer/,
  );

  await assert.rejects(go(tiny, image, ['--alpha', '2']), /--alpha: expected a number in \[0, 1\]/);
  await assert.rejects(command.run([image]), /--model DIR is required/);
  copyFileSync(image, join(dir, 'copy.png'));
  await assert.rejects(
    command.run(['--model', tiny, image, join(dir, 'copy.png')]),
    /expected one IMAGE, got 2/,
  );
});
