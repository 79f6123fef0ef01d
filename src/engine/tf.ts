/**
 * The TF.js namespace, with no side effects: modules that only build tensors (losses, metrics, the SegFormer
 * graph) import it from here, so they run in a browser bundle too. A backend must be made ready first: `ready()`
 * from `engine/index.ts` (Node) or `engine/browser.ts`.
 */
import * as tf from '@tensorflow/tfjs-core';

export { tf };
