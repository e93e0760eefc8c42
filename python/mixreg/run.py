"""Reading a mixreg run directory (docs/formats.md, "The run directory"):
config.json, log.jsonl, result.json and the checkpoint's weights, rescale
statistics and metadata, as plain Python and NumPy objects."""
import json
import os

from . import rescale
from .safetensors import FormatError, read_safetensors

MAX_JSON_FILE = 16 << 20


def _read_json_file(path):
    with open(path, "rb") as f:
        raw = f.read(min(os.fstat(f.fileno()).st_size, MAX_JSON_FILE) + 1)
    if len(raw) > MAX_JSON_FILE:
        raise FormatError(f"{path}: larger than {MAX_JSON_FILE} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise FormatError(f"{path}: not valid JSON ({e})") from None


def read_config(run_dir):
    """The run's settings (config.json) as a dict, keys named as `mixreg train`'s flags."""
    config = _read_json_file(os.path.join(run_dir, "config.json"))
    if not isinstance(config, dict):
        raise FormatError(f"{os.path.join(run_dir, 'config.json')}: not a JSON object")
    return config


def read_metrics(run_dir):
    """log.jsonl as a list of dicts ("type": "step" or "epoch", docs/formats.md),
    in file order; [] when there is no log. A last line still being written
    (no newline yet, not valid JSON) is left out; any other bad line is a
    FormatError naming it."""
    path = os.path.join(run_dir, "log.jsonl")
    if not os.path.exists(path):
        return []
    records = []
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError) as e:
            if number == len(lines):  # the partial record a live writer is appending
                break
            raise FormatError(f"{path}: line {number}: not valid JSON ({e})") from None
        if not isinstance(record, dict):
            raise FormatError(f"{path}: line {number}: not a JSON object")
        records.append(record)
    return records


class Run:
    """A run directory read whole. Attributes:

    path        the directory
    config      dict: config.json (or, without it, the checkpoint's mixreg.config)
    metrics     list of dicts: log.jsonl
    result      dict or None: result.json (final test metrics)
    weights     dict name -> NumPy array: the model's parameters and buffers,
                PyTorch's names (load_state_dict-ready after torch.from_numpy)
    tensors     every tensor of the checkpoint, mixreg.* entries included
    metadata    the checkpoint's __metadata__ strings
    model       dict: arch, in_channels, in_height, in_width, num_classes, hidden
    normalize   dict: per-channel mean and std on the [0, 1] pixel scale
    theta_bar, x_bar, y_bar   the rescaled prediction's statistics
    classes     class names (image-folder runs) or None
    epoch, step progress when the checkpoint was saved
    """

    def __init__(self, run_dir, checkpoint="model.safetensors"):
        self.path = run_dir
        self.tensors, self.metadata = read_safetensors(os.path.join(run_dir, checkpoint))
        self.weights = {k: v for k, v in self.tensors.items() if not k.startswith("mixreg.")}
        self.model = self._meta_json("mixreg.model")
        self.normalize = self._meta_json("mixreg.normalize")
        self.classes = self._meta_json("mixreg.classes") if "mixreg.classes" in self.metadata else None
        self.theta_bar = float(self.metadata.get("mixreg.theta_bar", "1"))
        self.epoch = int(self.metadata.get("mixreg.epoch", "0"))
        self.step = int(self.metadata.get("mixreg.step", "0"))
        self.x_bar = self.tensors.get("mixreg.rescale.x_bar")
        self.y_bar = self.tensors.get("mixreg.rescale.y_bar")
        if os.path.exists(os.path.join(run_dir, "config.json")):
            self.config = read_config(run_dir)
        else:
            self.config = self._meta_json("mixreg.config")
        self.metrics = read_metrics(run_dir)
        result = os.path.join(run_dir, "result.json")
        self.result = _read_json_file(result) if os.path.exists(result) else None

    def _meta_json(self, key):
        if key not in self.metadata:
            raise FormatError(f"{self.path}: checkpoint metadata lacks {key}")
        try:
            return json.loads(self.metadata[key])
        except (ValueError, RecursionError) as e:
            raise FormatError(f"{self.path}: metadata {key} is not valid JSON ({e})") from None

    def rescale_inputs(self, x):
        """x' = x_bar + theta_bar (x - x_bar) with this run's statistics (x normalised)."""
        return rescale.rescale_inputs(x, self.x_bar, self.theta_bar)

    def rescale_logits(self, logits):
        """h = y_bar + (logits - y_bar) / theta_bar with this run's statistics."""
        return rescale.rescale_logits(logits, self.y_bar, self.theta_bar)

    def __repr__(self):
        return f"Run({self.path!r}: {self.model.get('arch')}, epoch {self.epoch}, step {self.step})"


def load_run(run_dir, checkpoint="model.safetensors"):
    """Reads RUN_DIR (its checkpoint `checkpoint`, e.g. "best.safetensors" or
    "checkpoints/step-0000000100.safetensors") into a Run."""
    return Run(run_dir, checkpoint)
