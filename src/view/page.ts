/**
 * The viewer page: OpenSeadragon showing the slide's Deep Zoom tiles, the predicted labels as a second tiled image
 * (opacity slider), a class legend with the areas from the inference summary, the GeoJSON polygons drawn on a canvas
 * above the viewer (toggle), and the list of served slides. Self-contained: no network beyond this server.
 * `window.slideseg` exposes the viewer and its state for scripted checks (the browser test).
 */
export function viewerPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>slideseg view</title>
<link rel="icon" href="data:,">
<style>
  html, body { margin: 0; height: 100%; font: 14px system-ui, sans-serif; color: #222; }
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
</style>
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
</div>
<div id="viewer"><canvas id="polygon-canvas"></canvas></div>
<script src="/vendor/openseadragon/openseadragon.min.js"></script>
<script>
'use strict';
const state = { slides: [], current: null, labelImage: null, polygons: null, tilesLoaded: 0, ready: false };
window.slideseg = { state, viewer: null };
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
</script>
</body>
</html>
`;
}
