import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  f16BitsToF32Bits,
  MAX_HEADER_BYTES,
  parseSafetensors,
  WeightsError,
} from "../src/weights/safetensors.ts";
import { assertWeightsError } from "./helpers/assert.ts";
import {
  assemble,
  editHeader,
  f32Bytes,
  layout,
  randomFloats,
  u16Bytes,
  writeSafetensors,
} from "./helpers/safetensors_writer.ts";

/** A small valid file: three tensors of different ranks, plus metadata. */
function sample() {
  const a = randomFloats(2 * 3 * 2);
  const b = randomFloats(5);
  const c = randomFloats(1);
  const file = writeSafetensors(
    [
      { name: "a", shape: [2, 3, 2], data: a },
      { name: "b", shape: [5], data: b },
      { name: "c", shape: [], data: c },
    ],
    { format: "test", note: "ünïcødé ✓" },
  );
  return { file, a, b, c };
}

/** The sample with its header edited, data unchanged. */
function edited(edit: (h: Record<string, unknown>) => unknown): Uint8Array {
  return editHeader(sample().file, edit);
}

function entry(h: Record<string, unknown>, name: string): Record<string, unknown> {
  return h[name] as Record<string, unknown>;
}

// ---------------------------------------------------------------------------
// valid files

Deno.test("round trip: names, dtypes, shapes, offsets, values and metadata", () => {
  const { file, a, b, c } = sample();
  const st = parseSafetensors(file);
  assertEquals([...st.tensors.keys()], ["a", "b", "c"]);
  assertEquals(st.metadata.get("format"), "test");
  assertEquals(st.metadata.get("note"), "ünïcødé ✓");
  assertEquals(st.tensors.get("a"), {
    name: "a",
    dtype: "F32",
    shape: [2, 3, 2],
    size: 12,
    dataOffsets: [0, 48],
  });
  assertEquals(st.tensors.get("c")!.shape, []);
  assertEquals(st.tensors.get("c")!.size, 1);
  for (const [name, values] of [["a", a], ["b", b], ["c", c]] as const) {
    const t = st.getTensor(name);
    assert(t.data instanceof Float32Array);
    assertEquals(t.data, values);
  }
  assert(st.has("a") && !st.has("z"));
});

Deno.test("tensor data is an aligned copy, independent of the file and of other reads", () => {
  // a header of odd length puts the data at an odd byte offset
  const values = randomFloats(7);
  for (let extra = 0; extra < 4; extra++) {
    const { header, data } = layout([{ name: "x", shape: [7], data: values }]);
    const json = JSON.stringify(header) + " ".repeat(extra);
    const file = assemble(json, data);
    const st = parseSafetensors(file);
    const first = st.getTensor("x").data;
    assertEquals(first.byteOffset % 16, 0);
    assertEquals(first, values);
    first.fill(9); // must not reach later reads
    assertEquals(st.getTensor("x").data, values);
  }
});

Deno.test("a file inside a larger buffer (non-zero byteOffset) parses", () => {
  const { file, b } = sample();
  const big = new Uint8Array(file.length + 13);
  big.set(file, 5);
  const st = parseSafetensors(big.subarray(5, 5 + file.length));
  assertEquals(st.getTensor("b").data, b);
});

Deno.test("header padded with spaces (as train/export.py writes it) parses", () => {
  const x = randomFloats(3);
  const st = parseSafetensors(writeSafetensors([{ name: "x", shape: [3], data: x }], {}, {
    padTo: 8,
  }));
  assertEquals(st.getTensor("x").data, x);
});

Deno.test("a file with no tensors and no metadata is valid and empty", () => {
  const st = parseSafetensors(assemble({}));
  assertEquals(st.tensors.size, 0);
  assertEquals(st.metadata.size, 0);
  const err = assertWeightsError(() => st.getTensor("x"), 'no tensor named "x"', "holds none");
  assertEquals(err.tensor, "x");
});

Deno.test("zero-sized tensors take no bytes and may sit anywhere in the data", () => {
  const x = randomFloats(2);
  const { header, data } = layout([
    { name: "x", shape: [2], data: x },
    { name: "empty", shape: [0, 3], raw: new Uint8Array(0) },
  ]);
  const st = parseSafetensors(assemble(header, data));
  assertEquals(st.getTensor("empty").data.length, 0);
  assertEquals(st.getTensor("x").data, x);
});

Deno.test("the real exported weights parse (F32, 8-byte aligned header)", () => {
  const bytes = Deno.readFileSync(new URL("../weights/crm-lite.safetensors", import.meta.url));
  const st = parseSafetensors(bytes);
  assert(st.metadata.has("config"));
  assertEquals(st.tensors.get("stem.weight")!.dtype, "F32");
  assertEquals(st.getTensor("stem.bias").data.length, st.tensors.get("stem.bias")!.shape[0]);
});

// ---------------------------------------------------------------------------
// F16

/** Reference decoding by the textbook formula, independent of the bit-level one. */
function f16Reference(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m === 0 ? s * Infinity : NaN;
  if (e === 0) return s * m * Math.pow(2, -24);
  return s * (1 + m / 1024) * Math.pow(2, e - 15);
}

Deno.test("F16 decodes hand-computed values exactly", () => {
  const cases: [number, number][] = [
    [0x0000, 0],
    [0x8000, -0],
    [0x3c00, 1],
    [0xbc00, -1],
    [0xc000, -2],
    [0x3800, 0.5],
    [0x3555, 0.333251953125], // 1365/4096: nearest half to 1/3
    [0x4248, 3.140625], // nearest half to pi
    [0x3c01, 1.0009765625], // 1 + 2^-10: one ulp above 1
    [0x7bff, 65504], // largest finite half
    [0xfbff, -65504],
    [0x0400, 6.103515625e-5], // 2^-14, smallest normal
    [0x03ff, 6.097555160522461e-5], // 1023 * 2^-24, largest subnormal
    [0x0200, 3.0517578125e-5], // 2^-15, a subnormal
    [0x0001, 5.960464477539063e-8], // 2^-24, smallest subnormal
    [0x8001, -5.960464477539063e-8],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  const raw = u16Bytes([...cases.map(([h]) => h), 0x7e00, 0x7c01, 0xfe00]);
  const st = parseSafetensors(
    writeSafetensors([{ name: "h", shape: [cases.length + 3], dtype: "F16", raw }]),
  );
  const data = st.getTensor("h").data;
  assertEquals(st.tensors.get("h")!.dtype, "F16");
  cases.forEach(([h, want], i) => {
    assert(Object.is(data[i], want), `0x${h.toString(16)} -> ${data[i]}, want ${want}`);
  });
  for (let i = cases.length; i < data.length; i++) assert(Number.isNaN(data[i]));
});

Deno.test("F16 decoding is exact for all 65536 bit patterns", () => {
  const all = Array.from({ length: 65536 }, (_, h) => h);
  const st = parseSafetensors(
    writeSafetensors([{ name: "all", shape: [256, 256], dtype: "F16", raw: u16Bytes(all) }]),
  );
  const data = st.getTensor("all").data;
  for (let h = 0; h < 65536; h++) {
    const want = f16Reference(h);
    if (Number.isNaN(want)) assert(Number.isNaN(data[h]), `0x${h.toString(16)}`);
    else assert(Object.is(data[h], want), `0x${h.toString(16)}: ${data[h]} != ${want}`);
  }
});

Deno.test("F16 NaN payloads and signs carry over to the float32 bits", () => {
  assertEquals(f16BitsToF32Bits(0x7e00), 0x7fc00000);
  assertEquals(f16BitsToF32Bits(0x7c01), 0x7f802000);
  assertEquals(f16BitsToF32Bits(0xfe00), 0xffc00000);
  assertEquals(f16BitsToF32Bits(0x8000), 0x80000000);
});

Deno.test("F16 and F32 tensors mix in one file", () => {
  const x = randomFloats(3);
  const st = parseSafetensors(writeSafetensors([
    { name: "h", shape: [1], dtype: "F16", raw: u16Bytes([0x3c00]) },
    { name: "x", shape: [3], data: x },
  ]));
  assertEquals(st.getTensor("h").data, new Float32Array([1]));
  assertEquals(st.getTensor("x").data, x);
});

// ---------------------------------------------------------------------------
// malformed files: the length prefix and the header

Deno.test("files shorter than 8 bytes are rejected", () => {
  for (let n = 0; n < 8; n++) {
    assertWeightsError(
      () => parseSafetensors(new Uint8Array(n)),
      `file is ${n} bytes`,
      "shorter than the 8-byte header length",
    );
  }
});

Deno.test("the source name prefixes every message", () => {
  assertWeightsError(
    () => parseSafetensors(new Uint8Array(3), "weights/x.safetensors"),
    "weights/x.safetensors: ",
  );
});

Deno.test("header length 0 is rejected", () => {
  assertWeightsError(
    () => parseSafetensors(assemble("", new Uint8Array(16))),
    "header length is 0",
  );
});

Deno.test("absurd header lengths are rejected before reading", () => {
  for (const n of [BigInt(MAX_HEADER_BYTES) + 1n, 1n << 40n, (1n << 64n) - 1n]) {
    assertWeightsError(
      () => parseSafetensors(assemble("{}", new Uint8Array(0), { headerLength: n })),
      `header length ${n} is absurd`,
    );
  }
  // a PNG's first 8 bytes read as a length: not a safetensors file
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
  assertWeightsError(() => parseSafetensors(png), "absurd", "not a safetensors file");
});

Deno.test("a header running past the end of the file is rejected", () => {
  assertWeightsError(
    () => parseSafetensors(assemble("{}", new Uint8Array(0), { headerLength: 3n })),
    "header length 3 runs past the end of the file (10 bytes)",
  );
});

Deno.test("a header that is not UTF-8 is rejected", () => {
  const bad = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]); // {"\xff\xfe":1}
  assertWeightsError(() => parseSafetensors(assemble(bad)), "header is not valid UTF-8");
  // a truncated multi-byte sequence
  const cut = new Uint8Array([0x7b, 0x22, 0xc3, 0x22, 0x3a, 0x31, 0x7d]);
  assertWeightsError(() => parseSafetensors(assemble(cut)), "not valid UTF-8");
});

Deno.test("a header that is not JSON is rejected", () => {
  for (const text of ["{", "{'a': 1}", "{}x", "not json", '{"a":}']) {
    assertWeightsError(() => parseSafetensors(assemble(text)), "header is not valid JSON");
  }
});

Deno.test("a header that is not a JSON object is rejected", () => {
  for (
    const [text, kind] of [["[]", "an array"], ["null", "null"], ["42", "number 42"], [
      '"x"',
      "string",
    ], ["true", "boolean"]]
  ) {
    assertWeightsError(() => parseSafetensors(assemble(text)), "header is not a JSON object", kind);
  }
});

Deno.test("__metadata__ must be an object of strings", () => {
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (h.__metadata__ = ["x"]))),
    "__metadata__ is not an object of strings but an array",
  );
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (h.__metadata__ = { config: { stem: 8 } }))),
    "__metadata__.config is an object",
    "must be strings",
  );
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (h.__metadata__ = { n: 3 }))),
    "__metadata__.n is number 3",
  );
});

// ---------------------------------------------------------------------------
// malformed tensor entries

Deno.test("a tensor entry that is not an object is rejected, naming the tensor", () => {
  for (const v of [null, [1], "F32", 7]) {
    const err = assertWeightsError(
      () => parseSafetensors(edited((h) => void (h.b = v))),
      'tensor "b": entry is',
      "not an object",
    );
    assertEquals(err.tensor, "b");
  }
});

Deno.test("entries missing dtype, shape or data_offsets are rejected", () => {
  for (const key of ["dtype", "shape", "data_offsets"]) {
    const err = assertWeightsError(
      () => parseSafetensors(edited((h) => void delete entry(h, "a")[key])),
      `tensor "a": entry is missing "${key}"`,
    );
    assertEquals(err.tensor, "a");
  }
});

Deno.test("entries with unknown fields are rejected", () => {
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (entry(h, "b").stride = [1]))),
    'tensor "b": entry has unknown field "stride"',
  );
});

Deno.test("a dtype of the wrong type is rejected", () => {
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (entry(h, "a").dtype = 32))),
    'tensor "a": dtype is number 32, not a string',
  );
});

Deno.test("unsupported dtypes are rejected, listing the supported ones", () => {
  for (const dtype of ["BF16", "F64", "I64", "U8", "BOOL", "f32", "float32", "", "toString"]) {
    assertWeightsError(
      () => parseSafetensors(edited((h) => void (entry(h, "a").dtype = dtype))),
      `tensor "a": unsupported dtype ${dtype} (supported: F32, F16)`,
    );
  }
});

Deno.test("shapes that are not arrays of non-negative integers are rejected", () => {
  for (const shape of ["5", 5, null, [-1], [2.5], ["5"], [[5]], [5, null], [2 ** 53]]) {
    assertWeightsError(
      () => parseSafetensors(edited((h) => void (entry(h, "b").shape = shape))),
      'tensor "b": shape',
      "is not an array of non-negative integers",
    );
  }
});

Deno.test("data_offsets that are not a pair of non-negative integers are rejected", () => {
  for (const off of [[0], [0, 20, 40], "0,20", null, [-4, 16], [0, 1.5], ["0", "20"]]) {
    assertWeightsError(
      () => parseSafetensors(edited((h) => void (entry(h, "b").data_offsets = off))),
      'tensor "b": data_offsets',
      "is not a pair of non-negative integers",
    );
  }
});

Deno.test("data_offsets out of order (begin > end) are rejected", () => {
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (entry(h, "b").data_offsets = [68, 48]))),
    'tensor "b": data_offsets [68, 48] are out of order',
  );
});

Deno.test("data_offsets past the end of the data are rejected", () => {
  // data: a = [0, 48), b = [48, 68), c = [68, 72)
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (entry(h, "c").data_offsets = [72, 76]))),
    'tensor "c": data_offsets [72, 76] run past the end of the data (72 bytes)',
  );
});

Deno.test("a byte length that disagrees with shape and dtype is rejected", () => {
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (entry(h, "b").shape = [6]))),
    'tensor "b": byte length 20 does not match shape [6] of F32 (24 bytes)',
  );
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (entry(h, "b").dtype = "F16"))),
    'tensor "b": byte length 20 does not match shape [5] of F16 (10 bytes)',
  );
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (entry(h, "c").shape = [0]))),
    'tensor "c": byte length 4 does not match shape [0] of F32 (0 bytes)',
  );
  // a product beyond 2^53 must not wrap into a match
  assertWeightsError(
    () => parseSafetensors(edited((h) => void (entry(h, "a").shape = [2 ** 30, 2 ** 30, 2 ** 30]))),
    'tensor "a": byte length 48 does not match shape',
    "too many bytes",
  );
});

Deno.test("overlapping tensors are rejected", () => {
  // b and c both claim bytes [64, 68)
  const file = edited((h) => {
    entry(h, "b").data_offsets = [44, 64];
    entry(h, "c").data_offsets = [64, 68];
    entry(h, "a").data_offsets = [0, 48];
  });
  const err = assertWeightsError(() => parseSafetensors(file), 'tensor "b"', "overlap", '"a"');
  assertEquals(err.tensor, "b");
  // two tensors claiming exactly the same bytes
  const { header, data } = layout([{ name: "x", shape: [2], data: randomFloats(2) }]);
  header.y = { ...(header.x as object) };
  assertWeightsError(() => parseSafetensors(assemble(header, data)), "overlap");
});

Deno.test("a hole of unreferenced bytes between tensors is rejected", () => {
  const { header, data } = layout([
    { name: "x", shape: [2], data: randomFloats(2) },
    { name: "y", shape: [1], data: randomFloats(1) },
  ]);
  const padded = new Uint8Array(data.length + 4);
  padded.set(data.subarray(0, 8));
  padded.set(data.subarray(8), 12);
  entry(header, "y").data_offsets = [12, 16];
  assertWeightsError(
    () => parseSafetensors(assemble(header, padded)),
    'tensor "y" starts at byte 12',
    "hole of 4 unreferenced bytes",
    'after tensor "x"',
    "total size",
  );
  // a hole at the very start of the data
  entry(header, "x").data_offsets = [4, 12];
  assertWeightsError(
    () => parseSafetensors(assemble(header, padded)),
    "hole of 4",
    "after the header",
  );
});

Deno.test("trailing bytes after the last tensor are rejected", () => {
  const { header, data } = layout([{ name: "x", shape: [2], data: randomFloats(2) }]);
  const longer = new Uint8Array(data.length + 5);
  longer.set(data);
  assertWeightsError(
    () => parseSafetensors(assemble(header, longer)),
    "data region is 13 bytes but the tensors' total size is 8 bytes",
    "5 trailing",
  );
  assertWeightsError(
    () => parseSafetensors(assemble({}, new Uint8Array(3))),
    "total size is 0 bytes",
  );
});

Deno.test("a truncated file is rejected at every cut point, always with a WeightsError", () => {
  const { file } = sample();
  for (let n = 0; n < file.length; n++) {
    assertWeightsError(() => parseSafetensors(file.subarray(0, n)));
  }
  // the usual case: the data cut short
  assertWeightsError(
    () => parseSafetensors(file.subarray(0, file.length - 1)),
    "past the end of the data",
    "truncated",
  );
});

Deno.test("any single corrupted header byte gives a WeightsError or a valid parse", () => {
  const { file } = sample();
  const n = Number(new DataView(file.buffer).getBigUint64(0, true));
  for (let i = 8; i < 8 + n; i++) {
    for (const v of [0x00, 0x22, 0x30 + (i % 10), 0x7d, 0xff]) {
      const bad = file.slice();
      bad[i] = v;
      try {
        parseSafetensors(bad);
      } catch (e) {
        assert(e instanceof WeightsError, `byte ${i} = ${v}: ${e}`);
      }
    }
  }
});

Deno.test("getTensor names a missing tensor", () => {
  const st = parseSafetensors(sample().file);
  const err = assertWeightsError(
    () => st.getTensor("stem.weight"),
    'no tensor named "stem.weight"',
    "holds 3",
  );
  assert(err instanceof Error);
  assertEquals(err.name, "WeightsError");
  assertEquals(err.tensor, "stem.weight");
});

Deno.test("file-level errors carry no tensor; f32Bytes round-trips through the parser", () => {
  const err = assertWeightsError(() => parseSafetensors(new Uint8Array(2)));
  assertEquals(err.tensor, undefined);
  const v = randomFloats(4);
  const st = parseSafetensors(writeSafetensors([{ name: "v", shape: [4], raw: f32Bytes(v) }]));
  assertEquals(st.getTensor("v").data, v);
});
