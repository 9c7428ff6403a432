// node ort_layer_divergence.js MODEL.onnx INPUTS.bin NxCxHxW LEVEL_A LEVEL_B: runs each input alone (batch 1) at
// both graph optimization levels and prints, per model output, the share of elements that differ and the
// largest difference. Called by scripts/ort_layer_divergence.py.
const ort = require('onnxruntime-node');
const fs = require('fs');

(async () => {
  const [model, file, dims, a, b] = process.argv.slice(2);
  const shape = dims.split('x').map(Number);
  const per = shape.slice(1).reduce((p, d) => p * d, 1);
  const buf = fs.readFileSync(file);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const runs = {};
  for (const level of [a, b]) {
    const s = await ort.InferenceSession.create(model, {graphOptimizationLevel: level, intraOpNumThreads: 1});
    runs[level] = [];
    for (let i = 0; i < shape[0]; i++) {
      const x = new ort.Tensor('float32', all.slice(i * per, (i + 1) * per), [1, ...shape.slice(1)]);
      runs[level].push(await s.run({[s.inputNames[0]]: x}));
    }
  }
  console.log(`${'tensor'.padEnd(32)} ${'differ'.padStart(9)} ${'max |diff|'.padStart(11)}   (${a} vs ${b}, ${shape[0]} inputs)`);
  for (const name of Object.keys(runs[a][0])) {
    let differ = 0, total = 0, max = 0;
    for (let i = 0; i < shape[0]; i++) {
      const p = runs[a][i][name].data, q = runs[b][i][name].data;
      for (let j = 0; j < p.length; j++) {
        const d = Math.abs(Number(p[j]) - Number(q[j]));
        if (d > 0) differ++;
        if (d > max) max = d;
        total++;
      }
    }
    console.log(`${name.padEnd(32)} ${(100 * differ / total).toFixed(3).padStart(8)}% ${max.toPrecision(4).padStart(11)}`);
  }
})().catch((e) => { console.error(`ort_layer_divergence: ${e.message}`); process.exit(2); });
