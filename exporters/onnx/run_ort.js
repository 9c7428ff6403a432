// Runs an ONNX model in ONNX Runtime (onnxruntime-node, CPU): the runtime adze's ONNX exports are checked and
// timed in.
//
//   node run_ort.js MODEL.onnx INPUT.bin SHAPE DTYPE OUTPUT.bin
//     INPUT.bin holds N samples as raw little-endian float32 or int64 (DTYPE); SHAPE is the model's input shape
//     ("250x1x28x28"), whose first dimension is the batch the model was exported with; N must be a multiple of
//     it. OUTPUT.bin receives the outputs of every batch, concatenated, as float32. Prints {"dims": [...]} of
//     one batch.
//   node run_ort.js --optimize MODEL.onnx OUT.onnx
//     Writes the graph ONNX Runtime runs after its graph optimizations (its optimizedModelFilePath) to OUT.onnx.
//   node run_ort.js --bench MODEL.onnx INPUT.bin SHAPE DTYPE WARMUP RUNS
//     Times one batch (the first of INPUT.bin): the session's creation, the first run, WARMUP untimed runs, then
//     RUNS timed ones. Prints {"open_seconds", "first_seconds", "seconds": [...], "max_rss_kib"}.
//
// The first input and the first output of the model are used, whatever their names.
// The module is found through ADZE_ORT_MODULE (a path) or the usual node resolution; ADZE_ORT_OPTIMIZATION sets
// the graph optimization level (all, extended, basic, disabled; default all), ADZE_ORT_THREADS the intra-op
// threads (default 1). Exit code 3 when the module cannot be loaded, 1 for any other failure.
'use strict';
const fs = require('fs');

let ort;
try {
  ort = require(process.env.ADZE_ORT_MODULE || 'onnxruntime-node');
} catch (e) {
  console.error(`run_ort: cannot load onnxruntime-node (${e.message.split('\n')[0]})`);
  process.exit(3);
}

function seconds(start) { return Number(process.hrtime.bigint() - start) / 1e9; }

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--optimize') {
    const options = {executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1,
                     optimizedModelFilePath: args[2]};
    if (process.env.ADZE_ORT_OPTIMIZATION) options.graphOptimizationLevel = process.env.ADZE_ORT_OPTIMIZATION;
    await ort.InferenceSession.create(args[1], options);
    return;
  }
  const bench = args[0] === '--bench';
  const [model, input, shapeText, dtype] = bench ? args.slice(1) : args;
  const shape = shapeText.split('x').map(Number);
  const perBatch = shape.reduce((a, b) => a * b, 1);
  const raw = fs.readFileSync(input);
  const data = dtype === 'int64'
    ? new BigInt64Array(raw.buffer, raw.byteOffset, raw.length / 8)
    : new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  if (data.length % perBatch !== 0) throw new Error(`input holds ${data.length} values, not a multiple of ${perBatch}`);
  const tensorOf = (batch) => new ort.Tensor(dtype === 'int64' ? 'int64' : 'float32', batch, shape);
  const options = {executionProviders: ['cpu'], intraOpNumThreads: Number(process.env.ADZE_ORT_THREADS || 1),
                   interOpNumThreads: 1};
  if (process.env.ADZE_ORT_OPTIMIZATION) options.graphOptimizationLevel = process.env.ADZE_ORT_OPTIMIZATION;

  if (bench) {
    const [warmup, runs] = [Number(args[5]), Number(args[6])];
    let start = process.hrtime.bigint();
    const session = await ort.InferenceSession.create(model, options);
    const open = seconds(start);
    const feeds = {[session.inputNames[0]]: tensorOf(data.subarray(0, perBatch))};
    start = process.hrtime.bigint();
    await session.run(feeds);
    const first = seconds(start);
    for (let i = 0; i < warmup; ++i) await session.run(feeds);
    const times = [];
    for (let i = 0; i < runs; ++i) {
      start = process.hrtime.bigint();
      await session.run(feeds);
      times.push(seconds(start));
    }
    console.log(JSON.stringify({open_seconds: open, first_seconds: first, seconds: times,
                                max_rss_kib: process.resourceUsage().maxRSS}));
    return;
  }

  const output = args[4];
  const session = await ort.InferenceSession.create(model, options);
  const chunks = [];
  let dims = null;
  for (let start = 0; start < data.length; start += perBatch) {
    const result = await session.run({[session.inputNames[0]]: tensorOf(data.subarray(start, start + perBatch))});
    const out = result[session.outputNames[0]];
    dims = out.dims;
    chunks.push(Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  }
  fs.writeFileSync(output, Buffer.concat(chunks));
  console.log(JSON.stringify({dims}));
}

main().catch((e) => {
  console.error(`run_ort: ${e.message}`);
  process.exit(1);
});
