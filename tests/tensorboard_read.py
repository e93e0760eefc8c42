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
checked_val = 0
for line in lines:
    if line["type"] == "step":
        pairs = [("train/loss", line["loss"]), ("train/lr", line["lr"]), ("train/accuracy", line["accuracy"])]
        assert 0 <= line["accuracy"] <= 1
    else:
        pairs = [("train/epoch_loss", line["train_loss"])]
        # the test set's metrics, and the validation split's when the run holds one out
        for split in [s for s in ("test", "val") if s in line]:
            for mode in ("plain", "rescaled"):
                for key in ("accuracy", "nll", "ece", "mce", "brier", "top5", "ece_adaptive"):
                    # top5 only with more than 5 classes, the adaptive ECE when computed
                    if line[split][mode].get(key) is not None:
                        pairs.append((f"{split}/{mode}/{key}", line[split][mode][key]))
                    else:
                        assert f"{split}/{mode}/{key}" not in tags["scalars"] or key not in ("top5", "ece_adaptive"), key
    for tag, want in pairs:
        events = [e for e in acc.Scalars(tag) if e.step == line["step"]]
        assert len(events) == 1, f"{tag} at step {line['step']}: {len(events)} events"
        got = events[0].value
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6), f"{tag} at step {line['step']}: {got} != {want}"
        checked += 1
        checked_val += tag.startswith("val/")
assert checked_val > 0 or not any("val" in l for l in lines), "no validation scalars checked"
hist = [t for t in tags["histograms"] if t.startswith("weights/")]
assert "weights/1.weight" in hist, tags["histograms"]
h = acc.Histograms("weights/1.weight")[-1].histogram_value
assert h.num == 784 * 512 and h.min <= h.max and sum(h.bucket) == h.num, h

# The run's hyperparameters, through the hparams plugin's own parser: every
# stored setting but "out", with config.json's values and types.
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.backend.event_processing import plugin_event_accumulator
content = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
assert list(content) == [hparams_metadata.SESSION_START_INFO_TAG], content
start = hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])
config = json.load(open(os.path.join(run, "config.json")))
want = {k: v for k, v in config.items() if k != "out"}
want["processes"] = lines[-1]["processes"]
assert set(start.hparams) == set(want), set(start.hparams) ^ set(want)
for key, value in want.items():
    got = start.hparams[key]
    if isinstance(value, bool):
        assert got.WhichOneof("kind") == "bool_value" and got.bool_value == value, (key, got)
    elif isinstance(value, (int, float)):
        assert got.WhichOneof("kind") == "number_value" and got.number_value == value, (key, got)
    elif isinstance(value, list):
        assert got.string_value == ",".join(str(x) for x in value), (key, got)
    else:
        assert got.WhichOneof("kind") == "string_value" and got.string_value == value, (key, got)
assert start.start_time_secs > 0
# As the dashboard's data provider reads it: a tensor summary of the plugin.
tensors = plugin_event_accumulator.EventAccumulator(os.path.join(run, "tensorboard"))
tensors.Reload()
assert hparams_metadata.SESSION_START_INFO_TAG in tensors.Tags()["tensors"], tensors.Tags()
meta = tensors.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG)
assert meta.plugin_data.plugin_name == "hparams" and meta.data_class == 2, meta
# And as the HParams dashboard builds its table: one session with these
# hyperparameters, the run's test scalars (top5, ece_adaptive included) as metrics.
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import hparams_plugin
mux = plugin_event_multiplexer.EventMultiplexer()
mux.AddRunsFromDirectory(run)
mux.Reload()
provider = data_provider.MultiplexerDataProvider(mux, run)
plugin = hparams_plugin.HParamsPlugin(base_plugin.TBContext(data_provider=provider, multiplexer=mux, logdir=run))
rc = context.RequestContext()
found = plugin._context.hparams_metadata(rc, "")
experiment = plugin._context.experiment_from_metadata(rc, "", True, found,
                                                      plugin._context.hparams_from_data_provider(rc, "", 1000))
assert {h.name for h in experiment.hparam_infos} == set(want), experiment.hparam_infos
metrics = {m.name.tag for m in experiment.metric_infos}
assert {"test/rescaled/top5", "test/rescaled/ece_adaptive", "test/plain/accuracy"} <= metrics, metrics
print(f"TensorBoard read {checked} scalars matching log.jsonl, {len(hist)} weight histograms and "
      f"{len(start.hparams)} hyperparameters")
