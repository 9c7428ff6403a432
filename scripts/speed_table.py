#!/usr/bin/env python3
"""The markdown tables of docs/results/runtime-speed-*.md from the JSON that scripts/speed.sh writes.

Usage: scripts/speed_table.py [OUT_DIR]   (default build/speed; reads NAME-t1.json and NAME-t2.json)

Each table row is one model in one runtime, as `adze bench --json` measured it; speed-ups are ratios of medians
measured in the same run (the first row of each model is libtorch running the original).
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
    return row["path"].endswith(".onnx") and "/models/" in row["path"]


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
    for threads in (1, 2):
        print("\n## %d thread%s\n" % (threads, "s" if threads > 1 else ""))
        print("| model | runtime, plan | median | p10 | p90 | speed-up vs libtorch | vs ONNX Runtime fp32 | cold start "
              "| peak RSS |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, title in MODELS:
            with open("%s/%s-t%d.json" % (out, name, threads)) as f:
                rows = json.load(f)["rows"]
            first = rows[0]["median_seconds"]
            ort = next(r for r in rows if is_baseline(r))["median_seconds"]
            for r in rows:
                m = r["median_seconds"]
                print("| %s | %s | %s | %s | %s | %.2f× | %.2f× | %s | %.0f MiB |" % (
                    title, label(r), seconds(m), seconds(r["p10_seconds"]), seconds(r["p90_seconds"]), first / m,
                    ort / m, seconds(r["cold_start_seconds"]), r["peak_rss_kib"] / 1024))


if __name__ == "__main__":
    main()
