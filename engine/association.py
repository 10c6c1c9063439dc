"""Cross-view association of per-view 2D people: which detections in different cameras are one person.

Pure numpy. The geometry is epipolar: a 2D joint back-projects to a ray from its camera, and two
detections of the same person in two views have rays that (nearly) meet for every joint. The
affinity of a pair of 2D people is the **median closest distance between their joint rays, in mm**
over the joints both see (mm, so one threshold fits any rig: an image error of e px at depth z is
e·z/f mm); a joint whose closest points lie behind either camera counts as ``cap_mm``.

Clustering (mvpose / Pose2Sim style, one person per view): pairs below the threshold are merged
greedily by increasing cost (union of clusters), under two constraints: a cluster never holds two
people of the same view, and the mean cost between all members of the two clusters being merged
(average linkage, incomparable pairs counted at ``2 × max_cost``) stays below the threshold, so a
chain A~B~C with A far from C does not merge. Lone detections stay alone (no 3D person from them).
"""

from __future__ import annotations

import numpy as np


def masked_median(values: np.ndarray, mask: np.ndarray, axis: int = -1) -> np.ndarray:
    """Median of ``values`` where ``mask`` along ``axis``; NaN where nothing is selected."""
    if values.shape[axis] == 0:
        return np.full(np.delete(values.shape, axis if axis >= 0 else values.ndim + axis), np.nan)
    v = np.sort(np.where(mask, values, np.inf), axis=axis)
    n = np.expand_dims(mask.sum(axis=axis), axis)
    lo = np.take_along_axis(v, np.maximum((n - 1) // 2, 0), axis=axis)
    hi = np.take_along_axis(v, np.minimum(n // 2, v.shape[axis] - 1), axis=axis)
    med = np.squeeze(0.5 * (lo + hi), axis=axis)
    return np.where(np.squeeze(n, axis) > 0, med, np.nan)


def ray_distance_costs(
    centers_mm: np.ndarray,
    rays: np.ndarray,
    visible: np.ndarray,
    view: np.ndarray,
    min_shared_joints: int = 3,
    cap_mm: float = 1000.0,
) -> np.ndarray:
    """Pairwise association cost of D 2D people.

    Args:
        centers_mm: (D,3) centre of the camera that saw each person.
        rays: (D,J,3) unit world directions of every joint's back-projected ray.
        visible: (D,J) bool, the joint was detected.
        view: (D,) camera index of each person (people of one view are never compared).
        min_shared_joints: fewer joints seen by both -> the pair is incomparable (inf).
        cap_mm: distance given to a joint whose rays meet behind a camera (and the clip of all).
    Returns:
        (D,D) symmetric median ray distance in mm; inf on the diagonal, for same-view pairs and
        for incomparable pairs.
    """
    D = len(view)
    if D == 0:
        return np.zeros((0, 0))
    u = rays[:, None]  # (D,1,J,3)
    v = rays[None, :]  # (1,D,J,3)
    w0 = (centers_mm[:, None] - centers_mm[None, :])[:, :, None, :]  # (D,D,1,3) C_a - C_b
    b = np.sum(u * v, axis=-1)  # (D,D,J)
    d = np.sum(u * w0, axis=-1)
    e = np.sum(v * w0, axis=-1)
    denom = np.maximum(1.0 - b * b, 1e-9)
    s_a = (b * e - d) / denom  # parameter along ray a (mm from its camera)
    s_b = (e - b * d) / denom
    gap = w0 + s_a[..., None] * u - s_b[..., None] * v
    dist = np.minimum(np.linalg.norm(gap, axis=-1), cap_mm)
    dist = np.where((s_a > 0) & (s_b > 0), dist, cap_mm)
    shared = visible[:, None] & visible[None, :]
    count = shared.sum(-1)
    comparable = (count >= max(1, min_shared_joints)) & (view[:, None] != view[None, :])
    cost = np.full((D, D), np.inf)
    if comparable.any():
        cost[comparable] = masked_median(dist[comparable], shared[comparable])
    return cost


def cluster_people(cost: np.ndarray, view: np.ndarray, max_cost: float) -> list[np.ndarray]:
    """Group 2D people into cross-view clusters (at most one per view).

    Args:
        cost: (D,D) pairwise cost (inf = never together), e.g. from :func:`ray_distance_costs`.
        view: (D,) camera index of each person.
        max_cost: pairs and cluster merges must cost less than this.
    Returns:
        clusters of >= 2 people as arrays of indices into the D people, in creation order.
    """
    D = len(view)
    members: dict[int, list[int]] = {i: [i] for i in range(D)}
    label = np.arange(D)
    iu = np.triu_indices(D, k=1)
    pair_cost = cost[iu]
    keep = pair_cost < max_cost
    order = np.argsort(pair_cost[keep], kind="stable")
    clipped = np.minimum(cost, 2.0 * max_cost)
    for a, b in zip(iu[0][keep][order], iu[1][keep][order]):
        la, lb = label[a], label[b]
        if la == lb:
            continue
        ma, mb = members[la], members[lb]
        if set(view[ma].tolist()) & set(view[mb].tolist()):
            continue  # one person per view
        if len(ma) > 1 or len(mb) > 1:
            if clipped[np.ix_(ma, mb)].mean() >= max_cost:
                continue  # average linkage: the clusters as a whole disagree
        members[la] = ma + mb
        label[mb] = la
        del members[lb]
    return [np.array(sorted(m)) for m in members.values() if len(m) >= 2]
