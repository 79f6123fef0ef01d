/** SVG rendering through libvips (sharp) into RGBA pixels, and text escaping. */
import sharp from 'sharp';
import type { RGBAImage } from './types.ts';

export async function renderSvg(svg: string): Promise<RGBAImage> {
  const { data, info } = await sharp(Buffer.from(svg))
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
  };
}

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

/** Font stack available wherever libvips finds fontconfig fonts (DejaVu on Debian). */
export const FONT = 'DejaVu Sans, Arial, Helvetica, sans-serif';
