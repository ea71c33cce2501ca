/**
 * The typed error of crispmask's API.
 *
 * @module
 */

/** What went wrong, for programs that branch on it. */
export type ErrorCode =
  | "bad-input" // malformed image or mask
  | "aspect-mismatch" // the coarse mask is not the image's shape
  | "too-large" // the image exceeds the pixel limit
  | "weights" // the weights file is missing, corrupt or does not match
  | "aborted" // the caller's AbortSignal fired
  | "worker" // a worker failed
  | "disposed"; // the refiner was disposed

/** An error with a machine-readable `code`. */
export class CrispmaskError extends Error {
  /** what went wrong */
  readonly code: ErrorCode;
  /** An error with `code`; `options.cause` keeps the underlying error. */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CrispmaskError";
    this.code = code;
  }
}
