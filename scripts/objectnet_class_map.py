#!/usr/bin/env python3
"""Writes mixreg's class map for ObjectNet on a torchvision-ordered ImageNet
model (docs/objectnet.md) from the mapping files ObjectNet ships in
objectnet-1.0/mappings/:

  folder_to_objectnet_label.json    {image folder: ObjectNet label}
  objectnet_to_imagenet_1k.json     {ObjectNet label: "ImageNet label; ImageNet label; ..."}
  imagenet_to_label_2012_v2         one ImageNet label a line (line i: ImageNet 2012 id i)
  pytorch_to_imagenet_2012_id.json  {torchvision class index: ImageNet 2012 id}

Output: one line per ObjectNet folder that maps to ImageNet, "folder<TAB>i,j"
with i, j the torchvision class indices (0-based), sorted by folder; the
format of `mixreg eval --class-map` (docs/formats.md, "Class maps").

usage: objectnet_class_map.py MAPPINGS_DIR > objectnet.map
Standard library only."""
import json
import os
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-2])
    d = sys.argv[1]
    with open(os.path.join(d, "folder_to_objectnet_label.json")) as f:
        folder_of = {label: folder for folder, label in json.load(f).items()}
    with open(os.path.join(d, "objectnet_to_imagenet_1k.json")) as f:
        imagenet_labels_of = {label: names.split("; ") for label, names in json.load(f).items()}
    with open(os.path.join(d, "imagenet_to_label_2012_v2")) as f:
        id_of_label = {line.strip(): i for i, line in enumerate(f) if line.strip()}
    with open(os.path.join(d, "pytorch_to_imagenet_2012_id.json")) as f:
        torch_index_of_id = {int(imagenet_id): int(index) for index, imagenet_id in json.load(f).items()}
    lines = []
    for label, names in imagenet_labels_of.items():
        if label not in folder_of:
            sys.exit(f"ObjectNet label {label!r} has no folder in folder_to_objectnet_label.json")
        indices = []
        for name in names:
            if name not in id_of_label:
                sys.exit(f"ImageNet label {name!r} (for {label!r}) is not in imagenet_to_label_2012_v2")
            indices.append(torch_index_of_id[id_of_label[name]])
        lines.append(f"{folder_of[label]}\t{','.join(str(i) for i in sorted(set(indices)))}")
    print("# ObjectNet folder\ttorchvision ImageNet class indices (scripts/objectnet_class_map.py)")
    print("\n".join(sorted(lines)))


if __name__ == "__main__":
    main()
