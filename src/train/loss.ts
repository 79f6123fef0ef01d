/** The training loss from config: the losses registry's weighted sum, in the mode of the model's logit count. */
export { buildLoss } from '../losses/registry.ts';
