/**
 * OME-NGFF image metadata: the `multiscales` (axes, datasets, scales) and `omero` rendering hints, from
 * NGFF 0.4 (Zarr v2: `.zattrs`) or 0.5 (Zarr v3: `zarr.json` attributes.ome). Older 0.1-0.3 files
 * (axes absent or plain names) are read as well, since they only differ in how axes are spelled.
 */
import { unsafeKeyReason } from '../confine.ts';
import type { MemoStore } from './store.ts';

export interface NgffAxis {
  name: string;
  /** 'space', 'time', 'channel' or absent. */
  type: string | null;
  unit: string | null;
}

export interface NgffDataset {
  /** Array path relative to the image group. */
  path: string;
  /** Per-axis physical size of a pixel (dataset scale times any multiscale-wide scale), null when absent. */
  scale: number[] | null;
}

export interface OmeroChannel {
  label: string | null;
  /** Hex RGB 'RRGGBB', or null. */
  color: string | null;
  window: { start: number; end: number } | null;
  active: boolean;
}

export interface NgffImage {
  zarrFormat: 2 | 3;
  version: string;
  name: string | null;
  /** Store path prefix of the image group: '' or e.g. '0/' for a bioformats2raw layout. */
  groupPath: string;
  axes: NgffAxis[];
  datasets: NgffDataset[];
  omeroChannels: OmeroChannel[];
}

type Json = Record<string, unknown>;

/** Pyramid levels and axes accepted (a 2^31-pixel axis halves 31 times; NGFF images have at most 5 axes). */
const MAX_LEVELS = 64;
const MAX_AXES = 16;

/** Micrometres per unit, for the NGFF (UDUNITS-2) length units a slide might use. */
const MICROMETRES_PER_UNIT: Record<string, number> = {
  angstrom: 1e-4,
  picometer: 1e-6,
  nanometer: 1e-3,
  micrometer: 1,
  micron: 1,
  millimeter: 1e3,
  centimeter: 1e4,
  meter: 1e6,
};

export function micrometresPerUnit(unit: string | null): number | null {
  return unit === null ? null : (MICROMETRES_PER_UNIT[unit.toLowerCase()] ?? null);
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Reads the image metadata of the group at `groupPath` ('' = the root). */
export async function readNgffImage(
  store: MemoStore,
  source: string,
  multiscaleIndex = 0,
  groupPath = '',
): Promise<NgffImage> {
  const where = groupPath === '' ? source : `${source}/${groupPath.replace(/\/$/, '')}`;
  const v3 = await store.json(`${groupPath}zarr.json`);
  let attrs: Json;
  let zarrFormat: 2 | 3;
  let doc: string;
  if (v3 && v3.zarr_format === 3) {
    zarrFormat = 3;
    doc = `${groupPath}zarr.json`;
    const a = isObject(v3.attributes) ? v3.attributes : {};
    // NGFF 0.5 nests everything under "ome"; some 0.5 drafts put it at the top.
    attrs = isObject(a.ome) ? a.ome : a;
  } else {
    zarrFormat = 2;
    doc = `${groupPath}.zattrs`;
    const zattrs = await store.json(doc);
    if (!zattrs) {
      const zgroup = await store.json(`${groupPath}.zgroup`);
      if (zgroup)
        throw new Error(`${where}: has .zgroup but no .zattrs, so no OME-NGFF multiscales metadata`);
      throw new Error(`${where}: not an OME-Zarr: neither zarr.json (Zarr v3) nor .zattrs (Zarr v2) found`);
    }
    attrs = zattrs;
  }

  const multiscales = attrs.multiscales;
  if (!Array.isArray(multiscales) || multiscales.length === 0) {
    // bioformats2raw writes a plain group whose image series live in numbered sub-groups: open the first.
    if (groupPath === '' && 'bioformats2raw.layout' in attrs)
      return readNgffImage(store, source, multiscaleIndex, '0/');
    throw new Error(`${where}: ${doc} has no "multiscales" attribute — not an OME-NGFF image`);
  }
  const ms = multiscales[multiscaleIndex];
  if (!isObject(ms)) {
    throw new Error(
      `${where}: multiscale #${multiscaleIndex} does not exist (${multiscales.length} in ${doc})`,
    );
  }
  const version = String(ms.version ?? attrs.version ?? (zarrFormat === 3 ? '0.5' : 'unknown'));

  const datasetsRaw = ms.datasets;
  if (!Array.isArray(datasetsRaw) || datasetsRaw.length === 0) {
    throw new Error(`${where}: ${doc} multiscales[${multiscaleIndex}] lists no datasets`);
  }
  if (datasetsRaw.length > MAX_LEVELS) {
    throw new Error(
      `${where}: ${doc} multiscales[${multiscaleIndex}] lists ${datasetsRaw.length} datasets (at most ${MAX_LEVELS} levels)`,
    );
  }
  const axes = parseAxes(ms.axes, where, doc);
  const globalScale = scaleOf(ms.coordinateTransformations);
  const datasets = datasetsRaw.map((d, i): NgffDataset => {
    if (!isObject(d) || typeof d.path !== 'string') {
      throw new Error(`${where}: ${doc} dataset #${i} has no "path"`);
    }
    const unsafe = d.path.startsWith('/') ? 'is an absolute path' : unsafeKeyReason(d.path);
    if (unsafe || d.path.trim() === '') {
      throw new Error(
        `${where}: ${doc} dataset path "${d.path}" ${unsafe ?? 'is empty'}: must lie inside the store`,
      );
    }
    let scale = scaleOf(d.coordinateTransformations);
    if (scale && scale.length !== axes.length) {
      throw new Error(
        `${where}: dataset "${d.path}" scale has ${scale.length} values for ${axes.length} axes`,
      );
    }
    if (scale && globalScale && globalScale.length === scale.length) {
      scale = scale.map((s, k) => s * globalScale[k]);
    }
    return { path: d.path, scale };
  });

  const omero = isObject(attrs.omero) ? attrs.omero : null;
  const omeroChannels = Array.isArray(omero?.channels) ? omero.channels.map(parseOmeroChannel) : [];
  const name = typeof ms.name === 'string' ? ms.name : null;
  return { zarrFormat, version, name, groupPath, axes, datasets, omeroChannels };
}

function parseAxes(raw: unknown, where: string, doc: string): NgffAxis[] {
  // NGFF 0.1/0.2 had no axes: arrays were always t,c,z,y,x.
  if (raw === undefined) return ['t', 'c', 'z', 'y', 'x'].map((name) => ({ name, type: null, unit: null }));
  if (!Array.isArray(raw)) throw new Error(`${where}: ${doc} "axes" is not a list`);
  if (raw.length > MAX_AXES) throw new Error(`${where}: ${doc} has ${raw.length} axes (at most ${MAX_AXES})`);
  const axes = raw.map((a): NgffAxis => {
    if (typeof a === 'string') return { name: a, type: null, unit: null };
    if (isObject(a) && typeof a.name === 'string') {
      return {
        name: a.name,
        type: typeof a.type === 'string' ? a.type : null,
        unit: typeof a.unit === 'string' ? a.unit : null,
      };
    }
    throw new Error(`${where}: ${doc} has an axis without a name`);
  });
  for (const needed of ['y', 'x']) {
    if (!axes.some((a) => a.name === needed)) {
      throw new Error(
        `${where}: ${doc} axes (${axes.map((a) => a.name).join(',')}) have no "${needed}" axis`,
      );
    }
  }
  return axes;
}

function scaleOf(transforms: unknown): number[] | null {
  if (!Array.isArray(transforms)) return null;
  for (const t of transforms) {
    if (
      isObject(t) &&
      t.type === 'scale' &&
      Array.isArray(t.scale) &&
      t.scale.every((v) => typeof v === 'number')
    ) {
      return t.scale as number[];
    }
  }
  return null;
}

function parseOmeroChannel(raw: unknown): OmeroChannel {
  const c = isObject(raw) ? raw : {};
  const w = isObject(c.window) ? c.window : null;
  const window =
    w && typeof w.start === 'number' && typeof w.end === 'number' && w.end > w.start
      ? { start: w.start, end: w.end }
      : null;
  const color = typeof c.color === 'string' && /^[0-9a-f]{6}$/i.test(c.color) ? c.color : null;
  return {
    label: c.label === undefined || c.label === null ? null : String(c.label),
    color,
    window,
    active: c.active !== false,
  };
}
