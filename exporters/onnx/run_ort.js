// Runs an ONNX model in ONNX Runtime (onnxruntime-node, CPU) batch by batch, for the exporter tests.
//
//   node run_ort.js MODEL.onnx INPUT.bin SHAPE DTYPE OUTPUT.bin
//
// INPUT.bin holds N samples as raw little-endian float32 or int64 (DTYPE); SHAPE is the model's input shape
// ("250x1x28x28"), whose first dimension is the batch the model was exported with; N must be a multiple of it.
// OUTPUT.bin receives the outputs of every batch, concatenated, as float32. Prints {"dims": [...]} of one batch.
// The module is found through ADZE_ORT_MODULE (a path) or the usual node resolution; ADZE_ORT_OPTIMIZATION sets
// the graph optimization level (all, extended, basic, disabled; default all).
'use strict';
const fs = require('fs');
const ort = require(process.env.ADZE_ORT_MODULE || 'onnxruntime-node');

async function main() {
  const [model, input, shapeText, dtype, output] = process.argv.slice(2);
  const shape = shapeText.split('x').map(Number);
  const perBatch = shape.reduce((a, b) => a * b, 1);
  const raw = fs.readFileSync(input);
  const data = dtype === 'int64'
    ? new BigInt64Array(raw.buffer, raw.byteOffset, raw.length / 8)
    : new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  if (data.length % perBatch !== 0) throw new Error(`input holds ${data.length} values, not a multiple of ${perBatch}`);
  const options = {executionProviders: ['cpu'], intraOpNumThreads: 1};
  if (process.env.ADZE_ORT_OPTIMIZATION) options.graphOptimizationLevel = process.env.ADZE_ORT_OPTIMIZATION;
  const session = await ort.InferenceSession.create(model, options);
  const chunks = [];
  let dims = null;
  for (let start = 0; start < data.length; start += perBatch) {
    const batch = data.subarray(start, start + perBatch);
    const result = await session.run({input: new ort.Tensor(dtype === 'int64' ? 'int64' : 'float32', batch, shape)});
    const out = result.output;
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
