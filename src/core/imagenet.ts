/** The ImageNet channel statistics (RGB, on pixels scaled to [0, 1]) that SegFormer's image processor normalises with. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];
