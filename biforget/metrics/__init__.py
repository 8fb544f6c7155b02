"""Measures of sets and of single texts: diversity, relevance, efficiency, coverage and overlap of a set
(evaluate, synthesize's convergence), Min-K% membership scores (probe), and what a rewrite must
preserve with the checks built on it (rewrite)."""
