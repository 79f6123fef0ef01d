export { classColour, hex, hsvToRgb, makePalette, type RGB } from '../core/palette.ts';
export { MARGIN as CHART_MARGIN, niceTicks, type PlotOptions, plotCurves, type Series } from './chart.ts';
export { type LegendEntry, legendEntries, renderLegend, withLegend } from './legend.ts';
export {
  ERROR_COLOURS,
  type ErrorMapOptions,
  errorMap,
  errorOverlay,
  maskToRGBA,
  type OverlayOptions,
  overlay,
} from './masks.ts';
export { encodePNG, writeMaskPNG, writePNG } from './png.ts';
export { type ContactSheetOptions, contactSheet } from './sheet.ts';
export { type LabelMap, type PixelImage, type RGBAImage, toRGBA } from './types.ts';
