/** Errors about an annotation file (code 'annotations' in the library's error family); one line naming the file. */
import { SlidesegError } from '../core/errors.ts';

export class AnnotationError extends SlidesegError {
  override name = 'AnnotationError';
  override readonly code = 'annotations';
}
