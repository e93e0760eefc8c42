"""The torchvision side of bench/pipeline.sh: ImageFolder + DataLoader with
RandomResizedCrop(side) + RandomHorizontalFlip + ToTensor + Normalize, one
process, one thread (images per second per core); and the CIFAR recipe
(RandomCrop(32, padding=4) + flip + ToTensor + Normalize) on 50,000 uint8
images in memory, as torchvision.datasets.CIFAR10 applies it.
usage: /usr/bin/python3 torchvision_pipeline.py DIR [side]"""
import json
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from torchvision.datasets import ImageFolder


def best_rate(run, count, reps=3):
    best = 0.0
    for _ in range(reps):
        start = time.perf_counter()
        run()
        best = max(best, count / (time.perf_counter() - start))
    return best


def main():
    torch.set_num_threads(1)
    root = sys.argv[1]
    side = int(sys.argv[2]) if len(sys.argv) > 2 else 224
    norm = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    folder = ImageFolder(f"{root}/train", transform=T.Compose(
        [T.RandomResizedCrop(side, antialias=True), T.RandomHorizontalFlip(), T.ToTensor(), norm]))
    loader = torch.utils.data.DataLoader(folder, batch_size=32, num_workers=0)
    rate = best_rate(lambda: [None for _ in loader], len(folder))
    print(json.dumps({"pipeline": f"torchvision-folder-jpeg-rrc{side}-flip-normalise", "images": len(folder),
                      "img_per_s_one_core": round(rate, 1)}))

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(50000, 32, 32, 3), dtype=np.uint8)
    cifar = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                       T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    count = 10000  # a fifth of the set: the per-image rate is what matters
    rate = best_rate(lambda: [cifar(Image.fromarray(images[i])) for i in range(count)], count)
    print(json.dumps({"pipeline": "torchvision-cifar-pad4crop-flip-normalise", "images": count,
                      "img_per_s_one_core": round(rate, 1)}))


if __name__ == "__main__":
    main()
