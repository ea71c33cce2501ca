/**
 * Runs the test suite with Deno's test runner and ends with the plain line
 * `N passed, N failed` that CI reads. Exits with the test runner's status.
 *
 * Usage: deno task test [extra deno test args]
 */

const args = [
  "test",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net=127.0.0.1", // tests that start a server talk to it on loopback only
  ...Deno.args,
];
if (!Deno.args.some((a) => !a.startsWith("-"))) args.push("tests/");
const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" }).spawn();

let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const status = await child.status;

// Deno's summary: "ok | 12 passed (3 steps) | 0 failed (2s)" or "FAILED | 11 passed | 1 failed"
// deno-lint-ignore no-control-regex
const plain = tail.replace(/\x1b\[[0-9;]*m/g, "");
const summary = [...plain.matchAll(/(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/g)].at(-1);
const passed = summary ? Number(summary[1]) : 0;
let failed = summary ? Number(summary[2]) : 0;
if (!summary && !status.success) failed = 1; // the runner itself failed (e.g. a type error)
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(status.code);
