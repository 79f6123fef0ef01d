/** Annotation geometry shared by the Aperio XML and GeoJSON readers, the writer and the rasteriser. */

/** A closed ring of [x, y] vertices in level-0 pixels; the closing vertex is not repeated. */
export type Ring = Array<[number, number]>;

export interface AnnotationPolygon {
  /** Class name (QuPath classification name, Aperio annotation layer name). */
  label: string;
  /** The outer ring, then any holes. */
  rings: Ring[];
}

export interface AnnotationSet {
  polygons: AnnotationPolygon[];
  /** Micrometres per level-0 pixel stated by the file (Aperio's MicronsPerPixel), or null. */
  mpp: number | null;
  /** The file it was read from, for error messages. */
  source: string;
}
