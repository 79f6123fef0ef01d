/**
 * The viewer page: OpenSeadragon showing the slide's Deep Zoom tiles, the predicted labels as a second tiled image
 * (opacity slider), a class legend with the areas from the inference summary, the GeoJSON polygons drawn on a canvas
 * above the viewer (toggle), and the list of served slides. Self-contained: no network beyond this server.
 * `window.slideseg` exposes the viewer and its state for scripted checks (the browser test).
 */
/** The page's styles. */
const STYLE = `  html, body { margin: 0; height: 100%; font: 14px system-ui, sans-serif; color: #222; }
  body { display: flex; }
  #side { width: 260px; padding: 12px; box-sizing: border-box; overflow: auto; border-right: 1px solid #ddd; }
  #viewer { flex: 1; position: relative; background: #fff; }
  #polygon-canvas { position: absolute; inset: 0; pointer-events: none; z-index: 5; }
  h1 { font-size: 16px; margin: 0 0 8px; }
  h2 { font-size: 13px; margin: 14px 0 6px; text-transform: uppercase; color: #666; }
  ul { list-style: none; padding: 0; margin: 0; }
  #slides a { display: block; padding: 3px 4px; color: #1a56a0; text-decoration: none; border-radius: 3px; }
  #slides a.current { background: #e3edf9; font-weight: 600; }
  .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: -1px; border: 1px solid #0003; }
  #legend li { margin: 3px 0; }
  .area { color: #666; float: right; }
  label { display: block; margin: 6px 0; }
  input[type=range] { width: 100%; }
`;

/** The page's script: the viewer, the overlay, the legend, the polygon layer and in-browser inference. */
const SCRIPT = `'use strict';
const state = { slides: [], current: null, labelImage: null, polygons: null, tilesLoaded: 0, ready: false };
window.slideseg = { state, viewer: null, runModel, labelsOf, predictVisible };
const viewer = OpenSeadragon({
  id: 'viewer',
  prefixUrl: '/vendor/openseadragon/images/',
  showNavigator: true,
  maxZoomPixelRatio: 4,
  crossOriginPolicy: false,
});
window.slideseg.viewer = viewer;
viewer.addHandler('tile-loaded', () => { state.tilesLoaded++; });
const canvas = document.getElementById('polygon-canvas');
const opacity = document.getElementById('opacity');
const polygonsBox = document.getElementById('polygons');

function mm2(um2) { return um2 == null ? '' : (um2 / 1e6).toFixed(3) + ' mm²'; }

function drawPolygons() {
  const rect = canvas.parentElement.getBoundingClientRect();
  canvas.width = rect.width; canvas.height = rect.height;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!polygonsBox.checked || !state.polygons || viewer.world.getItemCount() === 0) return;
  const item = viewer.world.getItemAt(0);
  const p0 = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
  const p1 = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(1000, 0));
  const s = (p1.x - p0.x) / 1000;
  ctx.setTransform(s, 0, 0, s, p0.x, p0.y);
  ctx.lineWidth = 1.5 / s;
  for (const f of state.polygons.features) {
    const g = f.geometry; if (!g) continue;
    const c = (f.properties && f.properties.classification && f.properties.classification.color) || [0, 0, 0];
    ctx.strokeStyle = 'rgb(' + c.join(',') + ')';
    const polys = g.type === 'Polygon' ? [g.coordinates] : g.type === 'MultiPolygon' ? g.coordinates : [];
    ctx.beginPath();
    for (const poly of polys) for (const ring of poly) {
      ring.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath();
    }
    ctx.stroke();
  }
}
viewer.addHandler('update-viewport', drawPolygons);
viewer.addHandler('resize', drawPolygons);

opacity.addEventListener('input', () => { if (state.labelImage) state.labelImage.setOpacity(Number(opacity.value)); });
polygonsBox.addEventListener('change', async () => {
  if (polygonsBox.checked && !state.polygons && state.current && state.current.polygons) {
    const r = await fetch('/slides/' + encodeURIComponent(state.current.name) + '.geojson');
    state.polygons = await r.json();
  }
  drawPolygons();
});

function show(slide) {
  state.current = slide; state.labelImage = null; state.polygons = null; state.ready = false;
  polygonsBox.checked = false;
  for (const a of document.querySelectorAll('#slides a')) a.classList.toggle('current', a.dataset.name === slide.name);
  const base = '/slides/' + encodeURIComponent(slide.name);
  viewer.open(base + '.dzi');
  viewer.addOnceHandler('open', () => {
    if (slide.labels) {
      viewer.addTiledImage({
        tileSource: base + '_labels.dzi',
        opacity: Number(opacity.value),
        success: (e) => { state.labelImage = e.item; state.ready = true; },
      });
    } else state.ready = true;
  });
  const controls = document.getElementById('overlay-controls');
  controls.hidden = !slide.labels;
  document.getElementById('polygons').parentElement.hidden = !slide.polygons;
  const legend = document.getElementById('legend');
  legend.replaceChildren(...slide.classes.map((c) => {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = 'rgba(' + c.rgba.slice(0, 3).join(',') + ',' + c.rgba[3] / 255 + ')';
    const area = document.createElement('span');
    area.className = 'area'; area.textContent = mm2(c.um2);
    li.append(sw, document.createTextNode(c.name), area);
    return li;
  }));
  history.replaceState(null, '', '?slide=' + encodeURIComponent(slide.name));
}

// In-browser inference (onnxruntime-web: WebGPU where the browser has it, else wasm): the model is fetched and
// compiled on first use.
function loadScript(src) {
  return new Promise((ok, fail) => {
    const el = document.createElement('script');
    el.src = src;
    el.onload = ok;
    el.onerror = () => fail(new Error('cannot load ' + src));
    document.head.append(el);
  });
}
async function ortSession() {
  if (!state.session) {
    const webgpu = 'gpu' in navigator && (await navigator.gpu.requestAdapter().catch(() => null)) != null;
    if (!window.ort) await loadScript(webgpu ? '/vendor/ort/ort.webgpu.min.js' : '/vendor/ort/ort.wasm.min.js');
    ort.env.wasm.wasmPaths = '/vendor/ort/';
    ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page
    const providers = webgpu ? ['webgpu', 'wasm'] : ['wasm'];
    state.session = await ort.InferenceSession.create('/model/model.onnx', { executionProviders: providers });
    state.provider = webgpu ? 'webgpu (else wasm)' : 'wasm';
  }
  return state.session;
}
/** RGBA (w × h) → logits { dims: [1, C, h/4, w/4], data }, preprocessed as the whole-slide runner does. */
async function runModel(rgba, w, h) {
  const m = state.model;
  const plane = w * h;
  const x = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    const a = rgba[4 * i + 3];
    for (let c = 0; c < 3; c++) {
      let v = rgba[4 * i + c];
      if (a !== 255) v = Math.round((v * a + 255 * (255 - a)) / 255);
      x[c * plane + i] = v * m.scale[c] + m.offset[c];
    }
  }
  const s = await ortSession();
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, h, w]) });
  const t = out[s.outputNames[0]];
  return { dims: Array.from(t.dims), data: t.data };
}
/** Class per pixel: logits bilinearly upsampled (align_corners=False) to w × h, then argmax (as predict's mask). */
function labelsOf(logits, w, h) {
  const [, C, lh, lw] = logits.dims;
  const d = logits.data;
  const out = new Int16Array(w * h);
  for (let y = 0; y < h; y++) {
    const sy = Math.max(0, (y + 0.5) * lh / h - 0.5);
    const y0 = Math.floor(sy), y1 = Math.min(y0 + 1, lh - 1), fy = sy - y0;
    for (let x = 0; x < w; x++) {
      const sx = Math.max(0, (x + 0.5) * lw / w - 0.5);
      const x0 = Math.floor(sx), x1 = Math.min(x0 + 1, lw - 1), fx = sx - x0;
      let best = -1, bv = -Infinity;
      for (let c = 0; c < C; c++) {
        const b = c * lh * lw;
        const v = (1 - fy) * ((1 - fx) * d[b + y0 * lw + x0] + fx * d[b + y0 * lw + x1]) +
          fy * ((1 - fx) * d[b + y1 * lw + x0] + fx * d[b + y1 * lw + x1]);
        if (v > bv) { bv = v; best = c; }
      }
      // One logit (binary model): foreground where it is positive.
      out[y * w + x] = C === 1 ? (bv > 0 ? 0 : -1) : best;
    }
  }
  return out;
}
/** Runs the model on the visible part of the slide (at most 1024 px a side at its resolution) and paints it. */
async function predictVisible() {
  const slide = state.current, m = state.model, status = document.getElementById('model-status');
  if (!slide || !m || !slide.mpp) throw new Error('no model, or the slide has no mpp');
  const mpp = slide.predictedMpp || m.mpp;
  const ds = mpp / slide.mpp;
  const b = viewer.world.getItemAt(0).viewportToImageRectangle(viewer.viewport.getBounds(true));
  const span = (a, len, size) => {
    let lo = Math.max(0, Math.floor(a)), hi = Math.min(size, Math.ceil(a + len));
    if (hi - lo > 1024 * ds) { const c = (lo + hi) / 2; lo = Math.max(0, Math.round(c - 512 * ds)); hi = Math.min(size, lo + Math.round(1024 * ds)); }
    return [lo, Math.max(1, Math.round((hi - lo) / ds))];
  };
  const [x0, w] = span(b.x, b.width, slide.width);
  const [y0, h] = span(b.y, b.height, slide.height);
  status.textContent = 'running on ' + w + '×' + h + ' px…';
  const r = await fetch('/slides/' + encodeURIComponent(slide.name) + '/region?x=' + x0 + '&y=' + y0 +
    '&width=' + w + '&height=' + h + '&mpp=' + mpp);
  if (!r.ok) throw new Error('region: ' + r.status);
  const rgba = new Uint8Array(await r.arrayBuffer());
  const started = performance.now();
  const logits = await runModel(rgba, w, h);
  const labels = labelsOf(logits, w, h);
  const canvas = document.createElement('canvas');
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (c < 0) continue;
    const rgb = (m.classes[c] && m.classes[c].rgb) || [128, 128, 128];
    img.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
  if (state.predictionItem) viewer.world.removeItem(state.predictionItem);
  await new Promise((ok) => viewer.addSimpleImage({
    url: canvas.toDataURL('image/png'),
    x: x0 / slide.width, y: y0 / slide.width, width: (w * ds) / slide.width,
    opacity: Number(opacity.value),
    success: (e) => { state.predictionItem = e.item; ok(); },
  }));
  state.lastPrediction = { x: x0, y: y0, width: w, height: h, mpp, logits, labels };
  status.textContent = w + '×' + h + ' px at ' + mpp + ' µm/px in ' + ((performance.now() - started) / 1000).toFixed(1) + ' s';
  return state.lastPrediction;
}
document.getElementById('predict').addEventListener('click', () => {
  predictVisible().catch((e) => { document.getElementById('model-status').textContent = String(e.message || e); });
});
opacity.addEventListener('input', () => { if (state.predictionItem) state.predictionItem.setOpacity(Number(opacity.value)); });
fetch('/api/model').then((r) => r.json()).then((m) => {
  state.model = m;
  document.getElementById('model-controls').hidden = !m;
});

fetch('/api/slides').then((r) => r.json()).then((slides) => {
  state.slides = slides;
  const list = document.getElementById('slides');
  for (const s of slides) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = '?slide=' + encodeURIComponent(s.name); a.textContent = s.name; a.dataset.name = s.name;
    a.addEventListener('click', (e) => { e.preventDefault(); show(s); });
    li.append(a); list.append(li);
  }
  const wanted = new URLSearchParams(location.search).get('slide');
  if (slides.length) show(slides.find((s) => s.name === wanted) || slides[0]);
});
`;

export function viewerPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>slideseg view</title>
<link rel="icon" href="data:,">
<style>
${STYLE}</style>
</head>
<body>
<div id="side">
  <h1>slideseg view</h1>
  <h2>Slides</h2>
  <ul id="slides"></ul>
  <div id="overlay-controls" hidden>
    <h2>Prediction</h2>
    <label>Label opacity <input id="opacity" type="range" min="0" max="1" step="0.05" value="0.5"></label>
    <label><input id="polygons" type="checkbox"> Polygons</label>
    <ul id="legend"></ul>
  </div>
  <div id="model-controls" hidden>
    <h2>In-browser model</h2>
    <button id="predict" type="button">Predict visible region</button>
    <p id="model-status"></p>
  </div>
</div>
<div id="viewer"><canvas id="polygon-canvas"></canvas></div>
<script src="/vendor/openseadragon/openseadragon.min.js"></script>
<script>
${SCRIPT}</script>
</body>
</html>
`;
}
