#!/usr/bin/env python3
"""Reads a run's TensorBoard events with TensorBoard's own reader and checks
them against the run's log.jsonl.   tensorboard_read.py RUN_DIR"""
import json, math, os, sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run = sys.argv[1]
acc = EventAccumulator(os.path.join(run, "tensorboard"), size_guidance={"scalars": 0, "histograms": 0})
acc.Reload()
tags = acc.Tags()
lines = [json.loads(l) for l in open(os.path.join(run, "log.jsonl"))]
checked = 0
for line in lines:
    if line["type"] == "step":
        pairs = [("train/loss", line["loss"]), ("train/lr", line["lr"]), ("train/accuracy", line["accuracy"])]
        assert 0 <= line["accuracy"] <= 1
    else:
        pairs = [("train/epoch_loss", line["train_loss"])]
        for mode in ("plain", "rescaled"):
            for key in ("accuracy", "nll", "ece", "mce", "brier"):
                pairs.append((f"test/{mode}/{key}", line["test"][mode][key]))
    for tag, want in pairs:
        events = [e for e in acc.Scalars(tag) if e.step == line["step"]]
        assert len(events) == 1, f"{tag} at step {line['step']}: {len(events)} events"
        got = events[0].value
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6), f"{tag} at step {line['step']}: {got} != {want}"
        checked += 1
hist = [t for t in tags["histograms"] if t.startswith("weights/")]
assert "weights/1.weight" in hist, tags["histograms"]
h = acc.Histograms("weights/1.weight")[-1].histogram_value
assert h.num == 784 * 512 and h.min <= h.max and sum(h.bucket) == h.num, h
print(f"TensorBoard read {checked} scalars matching log.jsonl and {len(hist)} weight histograms")
