"""Group near-duplicate images so that a split never puts one face on both sides.

A 64-bit difference hash per image; images within a small Hamming distance are joined
into one group (union-find over all pairs, fine for tens of thousands of images).
"""

from __future__ import annotations

import cv2
import numpy as np

HASH_DISTANCE = 6


def dhash(rgb: np.ndarray) -> int:
    """Difference hash of an RGB image: sign of horizontal gradients on a 9 x 8 thumbnail."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def group_near_duplicates(hashes: list[int], max_distance: int = HASH_DISTANCE) -> list[int]:
    """A group id per hash; hashes within ``max_distance`` bits share a group (transitively)."""
    n = len(hashes)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    values = np.array(hashes, dtype=np.uint64)
    for i in range(n):
        xor = values[i + 1 :] ^ values[i]
        bits = np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
        for j in np.nonzero(bits <= max_distance)[0]:
            a, b = find(i), find(i + 1 + int(j))
            if a != b:
                parent[b] = a
    roots = [find(i) for i in range(n)]
    ids = {root: k for k, root in enumerate(dict.fromkeys(roots))}
    return [ids[r] for r in roots]
