/** Pictures: palette, mask colouring, overlays, error maps, legends, PNG files, charts and contact sheets. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import {
  CHART_MARGIN,
  classColour,
  contactSheet,
  ERROR_COLOURS,
  errorMap,
  errorOverlay,
  legendEntries,
  makePalette,
  maskToRGBA,
  niceTicks,
  overlay,
  plotCurves,
  type RGB,
  withLegend,
  writeMaskPNG,
  writePNG,
} from '../src/viz/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'slideseg-viz-'));

function pixel(img: { data: Uint8Array; width: number }, x: number, y: number, channels = 4): number[] {
  const i = (y * img.width + x) * channels;
  return [...img.data.subarray(i, i + channels)];
}

async function decode(png: Buffer | string) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels: info.channels };
}

test('palette: fixed first colours, then distinct golden-ratio hues', () => {
  assert.deepEqual(classColour(0), [0, 0, 0]);
  assert.deepEqual(classColour(1), [230, 25, 75]);
  const palette = makePalette(60);
  const keys = new Set(palette.map((c) => c.join()));
  assert.equal(keys.size, 60, 'every class has its own colour');
  assert.deepEqual(makePalette(60), palette, 'stable across calls');
  for (const c of palette)
    assert.ok(
      c.every((v) => Number.isInteger(v) && v >= 0 && v <= 255),
      `bad colour ${c}`,
    );
});

test('maskToRGBA paints each class in its palette colour', () => {
  const palette: RGB[] = [
    [1, 2, 3],
    [200, 100, 50],
  ];
  const img = maskToRGBA({ data: [0, 1, 1, 12], width: 2, height: 2 }, palette);
  assert.deepEqual(pixel(img, 0, 0), [1, 2, 3, 255]);
  assert.deepEqual(pixel(img, 1, 0), [200, 100, 50, 255]);
  assert.deepEqual(pixel(img, 0, 1), [200, 100, 50, 255]);
  assert.deepEqual(pixel(img, 1, 1), [...classColour(12), 255], 'beyond the palette: classColour');
});

test('overlay blends class colours and leaves background unpainted', () => {
  const image = { data: new Uint8Array([100, 100, 100, 10, 20, 30]), width: 2, height: 1 }; // RGB
  const out = overlay(
    image,
    { data: [0, 1], width: 2, height: 1 },
    [
      [0, 0, 0],
      [255, 0, 0],
    ],
    0.4,
  );
  assert.deepEqual(pixel(out, 0, 0), [100, 100, 100, 255]);
  // 0.6·10 + 0.4·255 = 108; 0.6·20 = 12; 0.6·30 = 18.
  assert.deepEqual(pixel(out, 1, 0), [108, 12, 18, 255]);
  assert.throws(
    () => overlay(image, { data: [0], width: 1, height: 1 }),
    /mask: 1x1 does not match the image's 2x1/,
  );
});

test('error map: TP green, FP red, FN blue, wrong class orange, TN and ignored transparent', () => {
  const target = { data: [0, 1, 0, 1, 2, 255], width: 3, height: 2 };
  const pred = { data: [0, 1, 1, 0, 1, 1], width: 3, height: 2 };
  const map = errorMap(pred, target, { ignoreIndex: 255 });
  assert.deepEqual(pixel(map, 0, 0), [0, 0, 0, 0]);
  assert.deepEqual(pixel(map, 1, 0), [...ERROR_COLOURS.truePositive, 255]);
  assert.deepEqual(pixel(map, 2, 0), [...ERROR_COLOURS.falsePositive, 255]);
  assert.deepEqual(pixel(map, 0, 1), [...ERROR_COLOURS.falseNegative, 255]);
  assert.deepEqual(pixel(map, 1, 1), [...ERROR_COLOURS.wrongClass, 255]);
  assert.deepEqual(pixel(map, 2, 1), [0, 0, 0, 0]);
  const grey = { data: new Uint8Array(6).fill(200), width: 3, height: 2 };
  const blended = errorOverlay(grey, pred, target, 0.5, { ignoreIndex: 255 });
  assert.deepEqual(pixel(blended, 0, 0), [200, 200, 200, 255]);
  assert.deepEqual(pixel(blended, 2, 0), [215, 100, 100, 255]); // (200 + 230) / 2, 200 / 2, 200 / 2
});

test('legend panel shows a swatch per class and its name', async () => {
  const image = { data: new Uint8Array(40 * 60).fill(128), width: 40, height: 60 };
  const entries = legendEntries({ '0': 'background', '1': 'tumour', '2': 'stroma' }, undefined, [1, 2]);
  assert.deepEqual(
    entries.map((e) => e.name),
    ['1: tumour', '2: stroma'],
  );
  const out = await withLegend(image, entries);
  assert.ok(out.width > 40 + 60, `legend adds a panel (width ${out.width})`);
  assert.equal(out.height, 60);
  assert.deepEqual(pixel(out, 10, 10), [128, 128, 128, 255], 'image kept');
  // Swatch centres: x = 40 + pad + swatch/2, y = pad + row·18 + 9.
  assert.deepEqual(pixel(out, 40 + 8 + 6, 8 + 9).slice(0, 3), classColour(1));
  assert.deepEqual(pixel(out, 40 + 8 + 6, 8 + 18 + 9).slice(0, 3), classColour(2));
  // Text is drawn: dark pixels right of the first swatch.
  let dark = 0;
  for (let x = 40 + 28; x < out.width; x++)
    for (let y = 8; y < 26; y++) if (pixel(out, x, y)[0]! < 100) dark++;
  assert.ok(dark > 20, `label text rendered (${dark} dark pixels)`);
});

test('writePNG writes grey, RGB and RGBA that decode back exactly; writeMaskPNG keeps class indices', async () => {
  const rgba = {
    data: Uint8Array.from({ length: 5 * 3 * 4 }, (_, i) => (i * 13) % 256),
    width: 5,
    height: 3,
  };
  await writePNG(join(dir, 'rgba.png'), rgba);
  const back = await decode(join(dir, 'rgba.png'));
  assert.deepEqual([back.width, back.height, back.channels], [5, 3, 4]);
  assert.deepEqual(back.data, rgba.data);
  const rgb = { data: Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 7) % 256), width: 5, height: 3 };
  await writePNG(join(dir, 'rgb.png'), rgb);
  assert.deepEqual((await decode(join(dir, 'rgb.png'))).data, rgb.data);
  await writeMaskPNG(join(dir, 'sub', 'mask.png'), { data: [0, 1, 2, 7, 255, 3], width: 3, height: 2 });
  const meta = await sharp(join(dir, 'sub', 'mask.png')).metadata();
  assert.equal(meta.channels, 1);
  const mask = await sharp(join(dir, 'sub', 'mask.png'))
    .extractChannel(0)
    .raw()
    .toBuffer();
  assert.deepEqual([...mask], [0, 1, 2, 7, 255, 3]);
  await assert.rejects(writeMaskPNG(join(dir, 'm.png'), { data: [300], width: 1, height: 1 }), /300.*8-bit/);
  await assert.rejects(
    writePNG(join(dir, 'x.png'), { data: new Uint8Array(5), width: 2, height: 1 }),
    /not 1, 3 or 4/,
  );
});

test('nice ticks are round numbers covering the range', () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 97), [20, 40, 60, 80]);
  assert.deepEqual(niceTicks(-0.013, 0.021), [-0.01, 0, 0.01, 0.02]);
});

test('plotCurves draws each series where its values are, with axes and legend', async () => {
  const width = 320;
  const height = 240;
  const red: RGB = [230, 25, 75];
  const blue: RGB = [0, 130, 200];
  const n = 50;
  const png = await plotCurves(
    [
      { name: 'rising', y: Array.from({ length: n }, (_, i) => i), colour: red },
      { name: 'flat', y: Array.from({ length: n }, () => 10), colour: blue },
    ],
    { width, height, title: 'loss', xLabel: 'step', yLabel: 'value', path: join(dir, 'chart.png') },
  );
  const img = await decode(png);
  assert.deepEqual([img.width, img.height], [width, height]);
  const near = (x: number, y: number, c: RGB) =>
    pixel(img, x, y, img.channels)
      .slice(0, 3)
      .every((v, k) => Math.abs(v - c[k]!) < 40);
  const rowsOf = (x: number, c: RGB) => {
    const rows: number[] = [];
    for (let y = CHART_MARGIN.top; y < height - CHART_MARGIN.bottom; y++) if (near(x, y, c)) rows.push(y);
    return rows;
  };
  // Sample columns left of the legend box (top-right) across the plot area.
  const columns = [0.1, 0.25, 0.4, 0.55].map((f) => Math.round(CHART_MARGIN.left + f * (width - 80)));
  const rising = columns.map((x) => rowsOf(x, red));
  const flat = columns.map((x) => rowsOf(x, blue));
  for (const [i, rows] of rising.entries())
    assert.ok(rows.length > 0, `rising curve drawn at x=${columns[i]}`);
  for (let i = 1; i < rising.length; i++)
    assert.ok(rising[i]![0]! < rising[i - 1]![0]!, 'rising curve goes up');
  const flatRows = flat.flat();
  assert.ok(flatRows.length >= columns.length, 'flat curve drawn');
  assert.ok(Math.max(...flatRows) - Math.min(...flatRows) <= 3, 'flat curve stays on one row');
  // The flat series at 10 lies 10/49 of the way up the rising one's range: below its midpoint.
  assert.ok(
    flatRows[0]! > (CHART_MARGIN.top + height - CHART_MARGIN.bottom) / 2,
    'flat series below mid-height',
  );
  // Axis frame: dark pixels along the left edge of the plot area.
  const frame = Math.min(
    ...[-1, 0, 1].map((d) => pixel(img, CHART_MARGIN.left + d, height / 2 + 3, img.channels)[0]!),
  );
  assert.ok(frame < 120, `plot frame drawn (darkest ${frame})`);
  assert.deepEqual((await decode(join(dir, 'chart.png'))).data, img.data);
  await assert.rejects(plotCurves([{ name: 'nan', y: [Number.NaN] }]), /no finite points/);
});

test('contactSheet lays images out in a grid with gaps', () => {
  const a = { data: new Uint8Array(2 * 2 * 4).fill(10), width: 2, height: 2 };
  const b = { data: new Uint8Array(3 * 1 * 3).fill(200), width: 3, height: 1 };
  const c = { data: new Uint8Array(1).fill(50), width: 1, height: 1 };
  const sheet = contactSheet([a, b, c], 2, { gap: 1 });
  // cells 3x2, 2 columns, 2 rows: width 2·3 + 3 = 9, height 2·2 + 3 = 7.
  assert.deepEqual([sheet.width, sheet.height], [9, 7]);
  assert.deepEqual(pixel(sheet, 0, 0), [255, 255, 255, 255]);
  assert.deepEqual(pixel(sheet, 1, 1), [10, 10, 10, 10]);
  assert.deepEqual(pixel(sheet, 5, 1), [200, 200, 200, 255]);
  assert.deepEqual(pixel(sheet, 5, 2), [255, 255, 255, 255], 'b is one row high');
  assert.deepEqual(pixel(sheet, 1, 4), [50, 50, 50, 255]);
});
