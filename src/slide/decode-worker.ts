/** Piscina worker: decodes one block and hands the pixels back without copying. */
import { Piscina } from 'piscina';
import { type BlockJob, decodeBlock } from './codecs/decode.ts';

export default async function decode(job: BlockJob): Promise<unknown> {
  const rgba = await decodeBlock(job);
  const owned = rgba.byteOffset === 0 && rgba.byteLength === rgba.buffer.byteLength ? rgba : rgba.slice();
  return Piscina.move(owned);
}
