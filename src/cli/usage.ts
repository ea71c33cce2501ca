/**
 * The `--help` text of the command-line tool.
 *
 * @module
 */

/** The full help, printed by `--help` / `-h` (also `refine --help`). */
export const HELP = `crispmask: refine a coarse object mask into an accurate mask at the
image's full resolution (CRM, CVPR 2022), on CPU with WebAssembly SIMD.

Usage:
  deno run --allow-read --allow-write mod.ts refine <image> <coarse-mask> -o <refined.png> [options]
  deno task refine <image> <coarse-mask> -o <refined.png> [options]

Arguments:
  <image>          the photo, PNG or JPEG (format found from the file's bytes)
  <coarse-mask>    the mask to refine, PNG or JPEG, any size with the image's
                   aspect ratio (e.g. a segmenter's 320-1024 px output). Read
                   from the alpha channel when it varies (cut-outs, alpha
                   masks), else from the first channel; >= 128 is foreground

Options:
  -o <file.png>       where to write the refined mask: 8-bit gray PNG at the
                      image's size (required)
  --overlay <file.png>
                      also write the image with the refined contour (green)
                      and the coarse mask's contour (magenta) drawn over it
  --binary            write 0/255 instead of soft 8-bit probabilities
  --workers <N>       worker threads (default: one per core)
  --dense             refine every pixel, not only the uncertain band near
                      the contour (slower; for comparisons)
  --flip              also refine the mirrored photo and average the two
                      (about twice the time; a little more accurate)
  --coarse-trust <X>  how far the output leans toward the coarse mask, in
                      logits (default 0.5, 0 = off): a pixel leaves its
                      coarse label only where the network's probability
                      passes sigmoid(X); keeps nearly right contours in place
  --max-pixels <N>    refuse larger images (default 100M); 24000000 or 24M
  --ignore-exif       keep a JPEG's stored pixel order: use when the coarse
                      mask was made by a tool that ignores EXIF orientation
  --json              print a JSON report (sizes, timings per step and per stage,
                      pixels the network evaluated) on stdout
  -q, --quiet         no progress bar and no summary line
  -h, --help          this help

EXIF orientation: a JPEG is turned upright as viewers show it, before
refinement, so the coarse mask must match the upright photo and the outputs
are upright too. If the mask was made from the stored (sideways) pixels, pass
--ignore-exif; a 90-degree mismatch is detected and reported, a 180-degree
one cannot be.

Outputs are written to a temporary file in the same directory and renamed,
so a failed run never leaves a partial file. Exit codes: 0 done, 1 bad input
or runtime error, 2 usage error.

Permissions: the deno task grants --allow-read --allow-write. The narrowest
grant that works is read access to the inputs, crispmask's weights/ and
build/wasm/ folders and the output folder (renaming the finished file needs
it), and write access to the output folder; no net, env or run permission:
  deno run --allow-read=photo.jpg,mask.png,<crispmask>/weights,<crispmask>/build/wasm,out \\
           --allow-write=out <crispmask>/mod.ts refine photo.jpg mask.png -o out/refined.png
`;
