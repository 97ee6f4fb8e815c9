"""Stage 3, si: specialization of units (neurons or SAE features) across tasks, and the modular
structure of their co-activation graph (formulas from seed 004, made exact here).

Specialization index of unit i over K tasks:

    P(task k | i active) = r_k / sum_j r_j,   r_k = (tokens of task k where i is active) / (tokens of task k)
    SI_i = 1 - H(P) / log K                   H in nats; SI = 1: fires for one task only, 0: uniformly

Normalising by each task's token count keeps a task with more text from looking preferred. Units
never active have no P: they are left out (and counted as dead by the capture). The null is the
same computation with the task labels of whole windows shuffled (capture.batches): an SI that is
not above its null is not specialization.

Co-activation graph: tokens where both i and j are active (count c_ij >= min_support), weighted by
normalised PMI (Bouma 2009): npmi = log(p_ij / (p_i p_j)) / -log p_ij, in [-1, 1]; the top_edges
(seed: 200) strongest positive edges form the graph. Communities: Louvain (networkx, seeded);
modularity (Newman 2006, weighted):

    Q = sum_c [ L_c / m - (D_c / 2m)^2 ]       L_c: weight inside c, D_c: total degree of c, m: total weight
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_TOP_EDGES = 200  # seed 004: "Q uses top-200 PMI edges to avoid noise"
DEFAULT_MIN_SUPPORT = 5  # co-activations below this are noise, not a relation


def task_probabilities(task_active: np.ndarray, task_tokens: np.ndarray) -> np.ndarray:
    """P(task | unit active) [K, d], normalised by each task's token count; columns of never-active units are nan."""
    rate = task_active / np.maximum(task_tokens, 1)[:, None]
    total = rate.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, rate / total, np.nan)


def specialization_index(task_active: np.ndarray, task_tokens: np.ndarray) -> np.ndarray:
    """SI per unit [d] (nan for units never active)."""
    p = task_probabilities(task_active, task_tokens)
    K = p.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        h = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=0)
    si = 1.0 - h / math.log(K)
    si[np.isnan(p).any(0)] = np.nan
    return np.clip(si, 0.0, 1.0)


def preferred_task(task_active: np.ndarray, task_tokens: np.ndarray) -> np.ndarray:
    """Index of the task each unit is most likely active for (-1 for never-active units)."""
    p = task_probabilities(task_active, task_tokens)
    out = np.full(p.shape[1], -1)
    live = ~np.isnan(p).any(0)
    out[live] = np.argmax(p[:, live], axis=0)
    return out


def npmi_edges(coactive: np.ndarray, n_tokens: int, min_support: int = DEFAULT_MIN_SUPPORT,
               top_edges: int = DEFAULT_TOP_EDGES) -> list[tuple[int, int, float]]:
    """The top_edges (i < j, npmi) by normalised PMI among pairs co-active on >= min_support tokens, npmi > 0."""
    if n_tokens <= 0:
        return []
    c = coactive
    p_i = np.diag(c) / n_tokens
    iu, ju = np.triu_indices(c.shape[0], k=1)
    cij = c[iu, ju]
    keep = cij >= max(min_support, 1)
    iu, ju, cij = iu[keep], ju[keep], cij[keep]
    p_ij = cij / n_tokens
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(p_ij / (p_i[iu] * p_i[ju]))
        denom = -np.log(p_ij)
        npmi = np.where(denom > 0, pmi / denom, 0.0)
    pos = npmi > 0
    iu, ju, npmi = iu[pos], ju[pos], npmi[pos]
    order = np.lexsort((ju, iu, -np.round(npmi, 12)))[:top_edges]  # strongest first; ties by index: deterministic
    return [(int(iu[o]), int(ju[o]), float(npmi[o])) for o in order]


def modularity(edges: list[tuple[int, int, float]], communities: list[set[int]]) -> float:
    """Newman's weighted modularity Q (module docstring), computed by hand."""
    m = sum(w for _, _, w in edges)
    if m <= 0:
        return float("nan")
    where = {node: c for c, members in enumerate(communities) for node in members}
    inside = [0.0] * len(communities)
    degree = [0.0] * len(communities)
    for i, j, w in edges:
        degree[where[i]] += w
        degree[where[j]] += w
        if where[i] == where[j]:
            inside[where[i]] += w
    return float(sum(L / m - (D / (2 * m)) ** 2 for L, D in zip(inside, degree)))


def communities(edges: list[tuple[int, int, float]], seed: int) -> list[set[int]]:
    """Louvain communities of the weighted graph (networkx), in a canonical order (by smallest member)."""
    import networkx as nx

    g = nx.Graph()
    g.add_weighted_edges_from(edges)
    if g.number_of_edges() == 0:
        return []
    found = nx.community.louvain_communities(g, weight="weight", seed=seed)
    return sorted((set(c) for c in found), key=min)


def graph_modularity(coactive: np.ndarray, n_tokens: int, seed: int, min_support: int = DEFAULT_MIN_SUPPORT,
                     top_edges: int = DEFAULT_TOP_EDGES) -> tuple[float, int, int]:
    """(Q, number of communities, edges used) of a co-activation count matrix; Q nan without edges."""
    edges = npmi_edges(coactive, n_tokens, min_support, top_edges)
    comms = communities(edges, seed)
    if not comms:
        return float("nan"), 0, 0
    return modularity(edges, comms), len(comms), len(edges)
