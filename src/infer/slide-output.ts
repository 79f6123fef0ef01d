/**
 * The outputs of a whole-slide run share one small interface. Label chunks reach the outputs that store them
 * (`chunk`: the OME-Zarr labels and image) as inference finishes them, in any order; once the label image is
 * complete it is read back band by band, top to bottom (`readLabelBands`), for the outputs derived from it (`band`:
 * class areas, the overlay, the polygons), so their memory is set by a band and their own size, not the slide's.
 */
import * as zarr from 'zarrita';
import { FolderStore } from '../slide/zarr/store.ts';

export interface SlideOutput<Result> {
  /** A finished label chunk (cw × ch, row-major) at chunk column cx, row cy; returns the writes it started. */
  chunk?(cx: number, cy: number, labels: Uint8Array, cw: number, ch: number): Promise<void>[];
  /** The next band of the finished label image: `rows` full-width rows starting at row y0. */
  band?(labels: Uint8Array, y0: number, rows: number): Promise<void> | undefined;
  /** Completes the output; the result is its part of the summary. */
  finish(): Promise<Result>;
  /** Drops a partial output after a failure. */
  abort?(): Promise<void>;
}

/**
 * Reads level 0 of the label image at `labelsPath` (a `width` × `height` grid) one band of `chunkSize` rows at a
 * time and hands each band to every output in turn, each finishing with it before the next band is read.
 */
export async function readLabelBands(
  labelsPath: string,
  width: number,
  height: number,
  chunkSize: number,
  outputs: readonly Pick<SlideOutput<unknown>, 'band'>[],
): Promise<void> {
  const arr = await zarr
    .open(new FolderStore(labelsPath), { kind: 'group' })
    .then((g) => zarr.open(g.resolve('0'), { kind: 'array' }));
  for (let y0 = 0; y0 < height; y0 += chunkSize) {
    const rows = Math.min(chunkSize, height - y0);
    const band = (await zarr.get(arr, [zarr.slice(y0, y0 + rows), null])) as { data: Uint8Array };
    if (band.data.length !== width * rows)
      throw new Error(
        `${labelsPath}: band at row ${y0} has ${band.data.length} pixels, expected ${width}×${rows}`,
      );
    for (const o of outputs) await o.band?.(band.data, y0, rows);
  }
}
