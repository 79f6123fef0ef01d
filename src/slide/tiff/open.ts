/**
 * Recognises the TIFF flavour (Aperio SVS, OME-TIFF, generic) and finds its levels, associated images
 * and properties the way OpenSlide 3.4.1 names them.
 */
import type { ByteSource } from '../bytesource.ts';
import type { BlockCache } from '../cache.ts';
import type { BlockDecoder } from '../decoder.ts';
import { SlideError } from '../errors.ts';
import { type Ifd, parseTiff, type TiffFile } from './ifd.ts';
import { TiffImage } from './image.ts';
import { TiffPyramidSource, type TiffSourceParts } from './source.ts';
import { Tag } from './tags.ts';

export async function openTiffSource(
  bytes: ByteSource,
  cache: BlockCache | undefined,
  decoder: BlockDecoder,
): Promise<TiffPyramidSource> {
  const tiff = await parseTiff(bytes);
  const first = tiff.ifds[0];
  const image = (ifd: Ifd) => new TiffImage(bytes.name, ifd, tiff.littleEndian, bytes.size);
  const vendor = TIFF_VENDORS.find((v) => v.detect(first))!;
  const parts = vendor.parts(bytes.name, tiff, image);
  addLevelProperties(parts);
  return new TiffPyramidSource(bytes, parts, cache, decoder);
}

type MakeImage = (ifd: Ifd) => TiffImage;

/**
 * The TIFF flavours, one vendor per function below, tried in order on the first directory (as OpenSlide's vendor
 * table); the generic pyramid comes last and takes any TIFF.
 */
const TIFF_VENDORS: {
  name: string;
  detect(first: Ifd): boolean;
  parts(name: string, tiff: TiffFile, image: MakeImage): TiffSourceParts;
}[] = [
  {
    name: 'aperio',
    detect: (first) => first.description.startsWith('Aperio'),
    parts: (_, t, i) => aperio(t, i),
  },
  { name: 'ome-tiff', detect: (first) => first.description.includes('<OME'), parts: omeTiff },
  { name: 'generic-tiff', detect: () => true, parts: (_, t, i) => generic(t, i) },
];

function aperio(tiff: TiffFile, image: MakeImage): TiffSourceParts {
  const levels: TiffImage[] = [];
  const associated = new Map<string, TiffImage>();
  tiff.ifds.forEach((ifd, i) => {
    if (ifd.tiled) {
      levels.push(image(ifd));
      return;
    }
    // OpenSlide: the second directory is the thumbnail; others name themselves on the description's 2nd line.
    let name: string | undefined = i === 1 ? 'thumbnail' : undefined;
    if (!name) {
      const line = ifd.description.split(/\r?\n/)[1] ?? '';
      const word = line.split(' ')[0];
      if (word === 'label' || word === 'macro') name = word;
    }
    if (name && !associated.has(name)) associated.set(name, image(ifd));
  });
  if (levels.length === 0)
    throw new SlideError(image(tiff.ifds[0]).source, 'Aperio file has no tiled levels');
  const properties = tiffProperties(tiff.ifds[0]);
  properties['openslide.vendor'] = 'aperio';
  const desc = tiff.ifds[0].description;
  const [, ...fields] = desc.split('|');
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq < 0) continue;
    const key = field.slice(0, eq).trim();
    if (key) properties[`aperio.${key}`] = field.slice(eq + 1).trim();
  }
  const mppValue = parseNumber(properties['aperio.MPP']);
  const mpp = mppValue ? { x: mppValue, y: mppValue } : null;
  const objectivePower = parseNumber(properties['aperio.AppMag']);
  if (mpp) {
    properties['openslide.mpp-x'] = String(mpp.x);
    properties['openslide.mpp-y'] = String(mpp.y);
  }
  if (objectivePower) properties['openslide.objective-power'] = String(objectivePower);
  return { format: 'aperio-svs', levels, associated, mpp, objectivePower, properties };
}

function omeTiff(name: string, tiff: TiffFile, image: MakeImage): TiffSourceParts {
  const parts = generic(tiff, image);
  parts.format = 'ome-tiff';
  const xml = tiff.ifds[0].description;
  const pixels = /<(?:\w+:)?Pixels\b[^>]*>/.exec(xml)?.[0] ?? '';
  const attr = (tag: string, key: string) => new RegExp(`\\b${key}="([^"]*)"`).exec(tag)?.[1];
  const toUm = (value: string | undefined, unit: string | undefined): number | null => {
    const v = parseNumber(value);
    if (!v) return null;
    const scale: Record<string, number> = { µm: 1, um: 1, 'µm ': 1, nm: 1e-3, mm: 1e3, cm: 1e4, m: 1e6 };
    const s = scale[unit ?? 'µm'];
    if (s === undefined) return null;
    return v * s;
  };
  const mx = toUm(attr(pixels, 'PhysicalSizeX'), attr(pixels, 'PhysicalSizeXUnit'));
  const my = toUm(attr(pixels, 'PhysicalSizeY'), attr(pixels, 'PhysicalSizeYUnit'));
  if (mx && my) {
    parts.mpp = { x: mx, y: my };
    parts.properties['openslide.mpp-x'] = String(mx);
    parts.properties['openslide.mpp-y'] = String(my);
  }
  const objective = /<(?:\w+:)?Objective\b[^>]*>/.exec(xml)?.[0];
  const mag = objective ? parseNumber(attr(objective, 'NominalMagnification')) : null;
  if (mag) {
    parts.objectivePower = mag;
    parts.properties['openslide.objective-power'] = String(mag);
  }
  if (!pixels) throw new SlideError(name, 'OME-TIFF without a <Pixels> element in its OME-XML');
  return parts;
}

function generic(tiff: TiffFile, image: MakeImage): TiffSourceParts {
  const first = tiff.ifds[0];
  const base = image(first);
  let levels: TiffImage[];
  if (first.subIfds.length > 0) {
    levels = [base, ...first.subIfds.filter((s) => s.width < first.width).map(image)];
  } else {
    // Reduced-resolution pages in the main chain: flagged as such (NewSubfileType bit 0) or tiled like level 0.
    const spp = first.number(Tag.SamplesPerPixel, 1);
    const reduced = tiff.ifds
      .slice(1)
      .filter(
        (ifd) =>
          ifd.width < first.width &&
          ifd.height <= first.height &&
          ifd.number(Tag.SamplesPerPixel, 1) === spp &&
          ((ifd.number(Tag.NewSubfileType, 0) & 1) === 1 || (ifd.tiled && first.tiled)),
      );
    levels = [base, ...reduced.map(image)];
  }
  levels.sort((a, b) => b.width - a.width);
  const properties = tiffProperties(first);
  properties['openslide.vendor'] = 'generic-tiff';
  let mpp: { x: number; y: number } | null = null;
  // Like OpenSlide, trust TIFF resolution only when given per centimetre.
  const xres = first.number(Tag.XResolution);
  const yres = first.number(Tag.YResolution);
  if (first.number(Tag.ResolutionUnit) === 3 && xres && yres && xres > 0 && yres > 0) {
    mpp = { x: 10000 / xres, y: 10000 / yres };
    properties['openslide.mpp-x'] = String(mpp.x);
    properties['openslide.mpp-y'] = String(mpp.y);
  }
  return { format: 'generic-tiff', levels, associated: new Map(), mpp, objectivePower: null, properties };
}

/** OpenSlide's tiff.* properties of the level-0 directory. */
function tiffProperties(ifd: Ifd): Record<string, string> {
  const props: Record<string, string> = {};
  const strings: [number, string][] = [
    [Tag.ImageDescription, 'ImageDescription'],
    [Tag.Make, 'Make'],
    [Tag.Model, 'Model'],
    [Tag.Software, 'Software'],
    [Tag.DateTime, 'DateTime'],
    [Tag.Artist, 'Artist'],
    [Tag.HostComputer, 'HostComputer'],
    [Tag.Copyright, 'Copyright'],
    [Tag.DocumentName, 'DocumentName'],
  ];
  for (const [tag, name] of strings) {
    const s = ifd.string(tag);
    if (s !== undefined) props[`tiff.${name}`] = s;
  }
  for (const [tag, name] of [
    [Tag.XResolution, 'XResolution'],
    [Tag.YResolution, 'YResolution'],
    [Tag.XPosition, 'XPosition'],
    [Tag.YPosition, 'YPosition'],
  ] as const) {
    const v = ifd.number(tag);
    if (v !== undefined && Number.isFinite(v)) props[`tiff.${name}`] = String(v);
  }
  // libtiff reports the default (inch) when the tag is absent, and so does OpenSlide.
  const unit = ifd.number(Tag.ResolutionUnit, 2);
  props['tiff.ResolutionUnit'] =
    ({ 1: 'none', 2: 'inch', 3: 'centimeter' } as Record<number, string>)[unit] ?? 'unknown';
  if (props['tiff.ImageDescription'] !== undefined)
    props['openslide.comment'] = props['tiff.ImageDescription'];
  return props;
}

function addLevelProperties(parts: TiffSourceParts): void {
  const p = parts.properties;
  const w0 = parts.levels[0].width;
  const h0 = parts.levels[0].height;
  p['openslide.level-count'] = String(parts.levels.length);
  parts.levels.forEach((img, i) => {
    const ds = i === 0 ? 1 : (w0 / img.width + h0 / img.height) / 2;
    p[`openslide.level[${i}].width`] = String(img.width);
    p[`openslide.level[${i}].height`] = String(img.height);
    p[`openslide.level[${i}].downsample`] = String(ds);
    if (img.tiled) {
      p[`openslide.level[${i}].tile-width`] = String(img.blockWidth);
      p[`openslide.level[${i}].tile-height`] = String(img.blockHeight);
    }
  });
}

function parseNumber(s: string | undefined): number | null {
  if (s === undefined) return null;
  const v = Number.parseFloat(s);
  return Number.isFinite(v) && v > 0 ? v : null;
}
