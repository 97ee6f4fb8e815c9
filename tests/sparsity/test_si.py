"""Specialization index and modularity on planted cases, and Q by hand = networkx's."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import torch

from engine.runtime.sparsity.capture import RunningStats
from engine.runtime.sparsity.si import (communities, graph_modularity, modularity, npmi_edges, preferred_task,
                                        specialization_index, task_probabilities)


def test_one_task_per_neuron_gives_si_one():
    task_active = np.diag([50.0, 20.0, 7.0])  # neuron k fires only on task k
    si = specialization_index(task_active, np.array([100.0, 100.0, 100.0]))
    np.testing.assert_allclose(si, 1.0)


def test_uniform_gives_si_zero_and_token_counts_normalise():
    # the same firing *rate* on every task, with very different task sizes
    tokens = np.array([100.0, 400.0, 1000.0])
    task_active = np.outer(tokens * 0.3, np.ones(4))
    np.testing.assert_allclose(specialization_index(task_active, tokens), 0.0, atol=1e-12)


def test_si_hand_value_and_dead_units():
    # P = (0.75, 0.25) over K = 2: H = -(0.75 ln 0.75 + 0.25 ln 0.25); SI = 1 - H / ln 2
    si = specialization_index(np.array([[3.0, 0.0], [1.0, 0.0]]), np.array([10.0, 10.0]))
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert abs(si[0] - (1 - h / math.log(2))) < 1e-12
    assert np.isnan(si[1])  # never active: no P
    assert list(preferred_task(np.array([[3.0, 0.0], [1.0, 0.0]]), np.array([10.0, 10.0]))) == [0, -1]
    np.testing.assert_allclose(task_probabilities(np.array([[3.0], [1.0]]), np.array([10.0, 10.0]))[:, 0], [0.75, 0.25])


def test_shuffled_null_is_near_zero_for_specialised_neurons():
    g = torch.Generator().manual_seed(1)
    n, K = 4000, 4
    task = torch.randint(0, K, (n,), generator=g)
    x = torch.nn.functional.one_hot(task, K).float() * torch.rand(n, 1, generator=g)  # neuron k fires on task k
    s = RunningStats(K, K)
    s.update(x, task, task[torch.randperm(n, generator=g)])
    assert specialization_index(s.task_active, s.task_tokens).min() > 0.99
    assert specialization_index(s.null_active, s.null_tokens).max() < 0.05


def _coactivation(on: np.ndarray) -> np.ndarray:
    return on.T.astype(float) @ on.astype(float)


def test_planted_communities_give_high_q_independent_low_q():
    rng = np.random.default_rng(0)
    n, groups, size = 3000, 4, 6
    # planted: each token switches on one group; its neurons fire together
    which = rng.integers(0, groups, n)
    planted = np.zeros((n, groups * size), bool)
    for g in range(groups):
        planted[which == g, g * size:(g + 1) * size] = rng.random(((which == g).sum(), size)) < 0.8
    q_planted, n_comm, edges = graph_modularity(_coactivation(planted), n, seed=0)
    independent = rng.random((n, groups * size)) < 0.2
    q_indep, _, _ = graph_modularity(_coactivation(independent), n, seed=0)
    assert q_planted > 0.6 and n_comm == groups and edges > 0
    assert math.isnan(q_indep) or q_indep < 0.3
    assert q_planted > q_indep + 0.3 if not math.isnan(q_indep) else True


def test_hand_q_equals_networkx():
    rng = np.random.default_rng(3)
    on = rng.random((500, 15)) < 0.3
    on[:250, :5] |= rng.random((250, 5)) < 0.6
    edges = npmi_edges(_coactivation(on), 500, min_support=3, top_edges=40)
    comms = communities(edges, seed=0)
    g = nx.Graph()
    g.add_weighted_edges_from(edges)
    assert len(edges) > 5
    assert abs(modularity(edges, comms) - nx.community.modularity(g, comms, weight="weight")) < 1e-12
    # and on a partition Louvain did not choose
    other = [set(range(0, 8)), set(range(8, 15))]
    other = [c & set(g.nodes) for c in other if c & set(g.nodes)]
    assert abs(modularity(edges, other) - nx.community.modularity(g, other, weight="weight")) < 1e-12


def test_npmi_hand_value_and_support():
    # 10 tokens: i active on 4, j on 5, both on 3 -> npmi = ln(0.3 / 0.2) / -ln 0.3
    c = np.array([[4.0, 3.0], [3.0, 5.0]])
    (i, j, w), = npmi_edges(c, 10, min_support=3)
    assert (i, j) == (0, 1) and abs(w - math.log(0.3 / 0.2) / -math.log(0.3)) < 1e-12
    assert npmi_edges(c, 10, min_support=4) == []
