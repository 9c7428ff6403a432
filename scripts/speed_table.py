#!/usr/bin/env python3
"""The markdown tables of docs/results/runtime-speed-*.md from the JSON that scripts/speed.sh writes.

Usage: scripts/speed_table.py [OUT_DIR]   (default build/speed; reads NAME.json)

Each table row is one model in one runtime at one thread count, as `adze bench --thread-counts 1,2 --json`
measured it; speed-ups are ratios of medians measured in the same run (libtorch running the original at the same
thread count, ONNX Runtime running PyTorch's fp32 export at it, and for two threads the same model at one: the
pooled medians' ratio, and the median of the rounds' ratios; then the cores' worth the machine gave in the same
rounds, from adze bench's probe, where the JSON has it).
"""
import json
import sys

MODELS = [("fmnist-cnn", "fmnist-cnn"), ("fmnist-vit", "fmnist-vit"), ("fortune-gpt", "fortune-gpt (64 tokens)"),
          ("resnet18", "ResNet-18 at 64×64"), ("mobilenet_v2", "MobileNet-V2 at 64×64"),
          ("transformer_traced", "nn.TransformerEncoder (16 tokens)")]


def seconds(s):
    return "%.0f µs" % (s * 1e6) if s < 1e-3 else "%.2f ms" % (s * 1e3)


def plan(path):
    return "2:4 + INT4" if "2of4" in path else "INT4 weights" if "int4" in path else "W8A8"


def is_baseline(row):
    return row["path"].endswith(".onnx") and "models" in row["path"].split("/")[:-1]


def label(row):
    if row["runtime_name"] == "libtorch":
        return "libtorch, original fp32"
    if is_baseline(row):
        return "ONNX Runtime, fp32 (PyTorch export)"
    if row["path"].endswith(".onnx"):
        target = "vnni" if row["path"].endswith("-vnni.onnx") else "portable"
        return "ONNX Runtime, %s (adze export, %s)" % (plan(row["path"]), target)
    return "adze runtime, " + plan(row["path"])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/speed"
    bench = {}
    for name, _ in MODELS:
        with open("%s/%s.json" % (out, name)) as f:
            bench[name] = json.load(f)
    print("CPU flags: %s; adze kernels: %s; %d runs x %d rounds" % (
        bench[MODELS[0][0]]["cpu_flags"], bench[MODELS[0][0]]["isa"], bench[MODELS[0][0]]["runs"],
        bench[MODELS[0][0]]["rounds"]))
    for threads in (1, 2):
        print("\n## %d thread%s\n" % (threads, "s" if threads > 1 else ""))
        print("| model | runtime, plan | median | p10 | p90 | speed-up vs libtorch | vs ONNX Runtime fp32 | vs 1 thread "
              "(pooled, paired; machine) | cold start | peak RSS |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, title in MODELS:
            rows = [r for r in bench[name]["rows"] if r["threads"] == threads]
            first = rows[0]["median_seconds"]
            ort = next(r for r in rows if is_baseline(r))["median_seconds"]
            for r in rows:
                m = r["median_seconds"]
                scaling = "" if threads == 1 else "%.2f×, %.2f×" % (r["speedup_vs_first_threads"],
                                                                      r["paired_speedup_vs_first_threads"])
                if threads > 1 and "machine_speedup_vs_first_threads" in r:
                    scaling += "; %.2f×" % r["machine_speedup_vs_first_threads"]
                print("| %s | %s | %s | %s | %s | %.2f× | %.2f× | %s | %s | %.0f MiB |" % (
                    title, label(r), seconds(m), seconds(r["p10_seconds"]), seconds(r["p90_seconds"]), first / m,
                    ort / m, scaling, seconds(r["cold_start_seconds"]), r["peak_rss_kib"] / 1024))

if __name__ == "__main__":
    main()
