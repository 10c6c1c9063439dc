"""Group per-joint 2D candidates into people with part-affinity scores (OpenPose's greedy assembly).

Pure numpy. Input per view: the candidates of every joint (x, y px, score) and, for each limb
``(a, b)`` of the PAF graph, an ``(n_a, n_b)`` affinity matrix between the candidates of ``a`` and
``b``. As OpenPose does: per limb, candidate connections are taken greedily by decreasing affinity
(each candidate used at most once per limb); connections then grow people: a connection touching a
person's joint adds the other joint to it, one joining two people merges them when they share no
joint, one touching nobody starts a new person. People with too few joints or a low mean score
are dropped.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _limb_connections(affinity: np.ndarray, min_affinity: float) -> list[tuple[int, int, float]]:
    """Greedy one-to-one connections (i, k, affinity) by decreasing affinity above ``min_affinity``."""
    if affinity.size == 0:
        return []
    order = np.argsort(-affinity, axis=None, kind="stable")
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for flat in order:
        i, k = divmod(int(flat), affinity.shape[1])
        s = float(affinity[i, k])
        if s <= min_affinity:
            break
        if i in used_a or k in used_b:
            continue
        used_a.add(i)
        used_b.add(k)
        out.append((i, k, s))
    return out


def group_people(
    candidates: Sequence[np.ndarray],
    affinities: Sequence[np.ndarray],
    pairs: np.ndarray,
    min_affinity: float = 0.05,
    min_joints: int = 4,
    min_mean_score: float = 0.2,
) -> np.ndarray:
    """Assemble people from candidates.

    Args:
        candidates: per joint j (K joints), an (n_j,3) array x, y px, score.
        affinities: per limb l, the (n_a, n_b) affinity of ``pairs[l] = (a, b)``'s candidates.
        pairs: (L,2) joint indices of the limbs, in the order they are assembled (tree limbs
            first, as in OpenPose's ``pafDict``).
        min_affinity: connections at or below this affinity are ignored.
        min_joints: people with fewer joints are dropped.
        min_mean_score: people whose mean (joint score + connection affinity) is below this are dropped.
    Returns:
        (N,K,3) people: x, y px, score (0 = joint absent), sorted by number of joints, descending.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    K = len(candidates)
    if len(affinities) != len(pairs):
        raise ValueError(f"group_people: {len(affinities)} affinity matrices for {len(pairs)} limbs")
    cands = [np.asarray(c, dtype=np.float64).reshape(-1, 3) for c in candidates]
    # A person: per joint the candidate index (-1 absent), plus its summed affinities.
    members: list[np.ndarray] = []
    link_score: list[float] = []
    owner: dict[tuple[int, int], int] = {}  # (joint, candidate) -> person index
    for (a, b), aff in zip(pairs, affinities):
        if not (0 <= a < K and 0 <= b < K):
            raise ValueError(f"group_people: limb ({a}, {b}) outside the {K} joints")
        aff = np.asarray(aff, dtype=np.float64)
        if aff.shape != (len(cands[a]), len(cands[b])):
            raise ValueError(
                f"group_people: limb ({a}, {b}) affinity is {aff.shape}, "
                f"expected ({len(cands[a])}, {len(cands[b])}) from the candidate counts"
            )
        for i, k, s in _limb_connections(aff, min_affinity):
            pa, pb = owner.get((a, i)), owner.get((b, k))
            if pa is not None and pb is not None:
                if pa == pb:
                    link_score[pa] += s
                    continue
                ma, mb = members[pa], members[pb]
                if np.any((ma >= 0) & (mb >= 0)):
                    continue  # the two people share a joint type: keep them apart
                merged = np.where(ma >= 0, ma, mb)
                members[pa] = merged
                link_score[pa] += link_score[pb] + s
                for j in np.flatnonzero(mb >= 0):
                    owner[(int(j), int(mb[j]))] = pa
                members[pb] = np.full(K, -1)
                link_score[pb] = 0.0
            elif pa is not None or pb is not None:
                p = pa if pa is not None else pb
                j, c = (b, k) if pa is not None else (a, i)
                if members[p][j] >= 0:
                    continue  # the person already has this joint from another limb
                members[p][j] = c
                owner[(j, c)] = p
                link_score[p] += s
            else:
                m = np.full(K, -1)
                m[a], m[b] = i, k
                owner[(a, i)] = owner[(b, k)] = len(members)
                members.append(m)
                link_score.append(s)
    people = []
    for m, ls in zip(members, link_score):
        joints = np.flatnonzero(m >= 0)
        if len(joints) < min_joints:
            continue
        pose = np.zeros((K, 3))
        for j in joints:
            pose[j] = cands[j][m[j]]
        if (pose[joints, 2].sum() + ls) / len(joints) < min_mean_score:
            continue
        people.append(pose)
    people.sort(key=lambda p: -int((p[:, 2] > 0).sum()))
    return np.stack(people) if people else np.zeros((0, K, 3))
