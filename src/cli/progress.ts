/**
 * The progress bar on stderr, drawn by `cli-progress` (one line, redrawn in
 * place, with percentage and ETA; it renders synchronously, so it advances
 * even while the refinement keeps the event loop busy).
 *
 * @module
 */

import cliProgress from "cli-progress";
import type { Progress } from "../refiner.ts";

/** Receives refinement progress; `stop` clears the bar. */
export interface ProgressSink {
  update(p: Progress): void;
  stop(): void;
}

/** A sink that draws nothing (stderr is not a terminal, or --quiet). */
export const SILENT: ProgressSink = { update() {}, stop() {} };

/** A bar on `stream` (a terminal) for one refinement: overall done/total, with the current stage. */
export function progressBar(stream: NodeJS.WritableStream): ProgressSink {
  const bar = new cliProgress.SingleBar({
    stream,
    format: "refining  stage {stage}/{stages} |{bar}| {percentage}% | ETA {eta_formatted}",
    barCompleteChar: "\u2588",
    barIncompleteChar: "\u2591",
    hideCursor: false, // a Ctrl-C mid-run must not leave the terminal without a cursor
    clearOnComplete: true,
    etaBuffer: 50,
  });
  let started = false;
  return {
    update(p: Progress) {
      const payload = { stage: p.stage + 1, stages: p.stages };
      if (!started) {
        bar.start(p.total, p.done, payload);
        started = true;
      } else {
        bar.update(p.done, payload);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
