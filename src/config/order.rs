//! The dependency graph of the services: cycle detection and the start order.
//!
//! Both work on `(name, depends_on)` pairs in file order. Unknown names and
//! self-dependencies are reported elsewhere (`validate.rs`) and ignored here.
//! Both are iterative, so no input can overflow the stack.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// At most this many cycles are reported: a graph can hold a number of cycles
/// quadratic in its size (one service depending on each of a chain of N), and
/// listing them all made a 350 KB config take seconds and a gigabyte.
pub(crate) const MAX_CYCLES: usize = 10;

/// The dependency cycles (at most [`MAX_CYCLES`], the first ones the search
/// meets), each as its members in dependency order starting with the member
/// that comes first in the file (`["a", "b"]` for `a -> b -> a`).
pub(crate) fn find_cycles(graph: &[(&str, &[String])]) -> Vec<Vec<String>> {
    let index: HashMap<&str, usize> = graph
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (*name, i))
        .collect();
    let edges = |i: usize| -> Vec<usize> {
        graph[i]
            .1
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .filter(|&d| d != i)
            .collect()
    };
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark = vec![Mark::New; graph.len()];
    let mut cycles: Vec<Vec<usize>> = Vec::new();
    for start in 0..graph.len() {
        if cycles.len() >= MAX_CYCLES {
            break;
        }
        if mark[start] != Mark::New {
            continue;
        }
        // The DFS path, each node with its outgoing edges and the next one to follow.
        let mut path: Vec<(usize, Vec<usize>, usize)> = vec![(start, edges(start), 0)];
        mark[start] = Mark::OnStack;
        while let Some((node, next_edges, next)) = path.last_mut() {
            let Some(&to) = next_edges.get(*next) else {
                mark[*node] = Mark::Done;
                path.pop();
                continue;
            };
            *next += 1;
            match mark[to] {
                Mark::New => {
                    mark[to] = Mark::OnStack;
                    path.push((to, edges(to), 0));
                }
                Mark::OnStack if cycles.len() < MAX_CYCLES => {
                    let from = path.iter().position(|(n, _, _)| *n == to).unwrap_or(0);
                    let mut cycle: Vec<usize> = path[from..].iter().map(|(n, _, _)| *n).collect();
                    let first = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
                    cycle.rotate_left(first);
                    if !cycles.contains(&cycle) {
                        cycles.push(cycle);
                    }
                }
                Mark::OnStack | Mark::Done => {}
            }
        }
    }
    cycles.sort();
    cycles
        .into_iter()
        .map(|c| c.into_iter().map(|i| graph[i].0.to_owned()).collect())
        .collect()
}

/// Names in dependency order: a service comes after everything it depends on;
/// among the services ready at each step, the one first in the file goes first.
/// Members of a cycle (refused at load) are appended in file order.
///
/// Kahn's algorithm with the ready services in a min-heap of file positions:
/// O((services + dependencies) log services). (Scanning for the first ready
/// service at each step was cubic: 2,000 services listed dependents first took
/// 20 s.) Names are unique (the loader refuses a name given twice).
pub(crate) fn start_order(graph: &[(&str, &[String])]) -> Vec<String> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(graph.len());
    for (i, (name, _)) in graph.iter().enumerate() {
        index.entry(*name).or_insert(i);
    }
    // For each service, how many of its dependencies are not placed yet, and
    // which services wait for it.
    let mut waiting = vec![0usize; graph.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); graph.len()];
    for (i, (name, deps)) in graph.iter().enumerate() {
        for dep in deps.iter().filter(|d| d.as_str() != *name) {
            if let Some(&j) = index.get(dep.as_str()) {
                waiting[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..graph.len())
        .filter(|&i| waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut placed = vec![false; graph.len()];
    let mut order = Vec::with_capacity(graph.len());
    while let Some(Reverse(i)) = ready.pop() {
        placed[i] = true;
        order.push(graph[i].0.to_owned());
        for &k in &dependents[i] {
            waiting[k] -= 1;
            if waiting[k] == 0 {
                ready.push(Reverse(k));
            }
        }
    }
    for (i, (name, _)) in graph.iter().enumerate() {
        if !placed[i] {
            order.push((*name).to_owned());
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The graph of `names[i]` depending on `deps[i]`.
    fn zip_graph<'a>(names: &'a [String], deps: &'a [Vec<String>]) -> Vec<(&'a str, &'a [String])> {
        names
            .iter()
            .zip(deps)
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect()
    }

    fn graph(spec: &[(&'static str, &[&str])]) -> Vec<(&'static str, Vec<String>)> {
        spec.iter()
            .map(|(n, deps)| (*n, deps.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    fn view<'a>(g: &'a [(&'static str, Vec<String>)]) -> Vec<(&'a str, &'a [String])> {
        g.iter().map(|(n, d)| (*n, d.as_slice())).collect()
    }

    #[test]
    fn dependencies_first_ties_in_file_order() {
        let g = graph(&[
            ("web", &["api", "cache"]),
            ("api", &["db"]),
            ("cache", &[]),
            ("db", &[]),
            ("worker", &["db"]),
        ]);
        assert_eq!(
            start_order(&view(&g)),
            ["cache", "db", "api", "web", "worker"]
        );
    }

    #[test]
    fn independent_services_keep_file_order() {
        let g = graph(&[("b", &[]), ("a", &[]), ("c", &[])]);
        assert_eq!(start_order(&view(&g)), ["b", "a", "c"]);
    }

    #[test]
    fn cycles_are_found_once_and_named_from_the_first_in_file() {
        let g = graph(&[
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a"]),
            ("d", &["e"]),
            ("e", &["d", "unknown"]),
            ("f", &["f", "a"]),
        ]);
        assert_eq!(
            find_cycles(&view(&g)),
            vec![vec!["a", "b", "c"], vec!["d", "e"]]
        );
        // A cycle never loops or loses a service in the start order.
        assert_eq!(start_order(&view(&g)).len(), 6);
    }

    /// Found with a hand-made input of the fuzz corpus (cycle-fan.json):
    /// `s0 -> s1 -> ... -> sN` with `sN` depending on every other service holds
    /// N cycles of up to N services each; reporting them all took seconds and
    /// gigabytes for a few thousand services.
    #[test]
    fn a_quadratic_number_of_cycles_is_capped() {
        let n = 5_000;
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let deps: Vec<Vec<String>> = (0..n)
            .map(|i| match names.get(i + 1) {
                Some(next) => vec![next.clone()],
                None => names[..n - 1].to_vec(),
            })
            .collect();
        let g = zip_graph(&names, &deps);
        let cycles = find_cycles(&g);
        assert_eq!(cycles.len(), MAX_CYCLES);
        assert!(cycles
            .iter()
            .all(|c| c.last().map(String::as_str) == Some("s4999")));
        assert_eq!(start_order(&g).len(), n);
    }

    /// The order as it was first written: at each step, the first service in
    /// the file whose known dependencies are all placed (cubic, but plainly right).
    fn reference_order(graph: &[(&str, &[String])]) -> Vec<String> {
        let known = |d: &String| graph.iter().any(|(n, _)| *n == d.as_str());
        let mut placed = vec![false; graph.len()];
        let mut order = Vec::new();
        while let Some(i) = graph.iter().enumerate().position(|(i, (name, deps))| {
            !placed[i]
                && deps
                    .iter()
                    .filter(|d| known(d) && d.as_str() != *name)
                    .all(|d| (0..graph.len()).any(|j| placed[j] && graph[j].0 == d.as_str()))
        }) {
            placed[i] = true;
            order.push(graph[i].0.to_owned());
        }
        for (i, (name, _)) in graph.iter().enumerate() {
            if !placed[i] {
                order.push((*name).to_owned());
            }
        }
        order
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Same order as the reference on any graph: cycles, self and unknown
        /// dependencies, dependencies listed twice.
        #[test]
        fn start_order_matches_the_reference(
            deps in proptest::collection::vec(proptest::collection::vec(0usize..10, 0..4), 0..9)
        ) {
            let names: Vec<String> = (0..deps.len()).map(|i| format!("s{i}")).collect();
            let deps: Vec<Vec<String>> = deps
                .iter()
                .map(|d| d.iter().map(|j| format!("s{j}")).collect())
                .collect();
            let g = zip_graph(&names, &deps);
            proptest::prop_assert_eq!(start_order(&g), reference_order(&g));
        }
    }

    /// Found with the fuzz corpus: 2,000 services listed dependents first (each
    /// depending on the next) took 20 s to order; now linear-logarithmic.
    #[test]
    fn a_long_chain_listed_backwards_is_ordered_fast() {
        let n = 2_000;
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let deps: Vec<Vec<String>> = (0..n)
            .map(|i| names.get(i + 1).cloned().into_iter().collect())
            .collect();
        let g = zip_graph(&names, &deps);
        let started = std::time::Instant::now();
        let order = start_order(&g);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let expected: Vec<String> = names.iter().rev().cloned().collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn no_cycles_in_a_dag() {
        let g = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        assert!(find_cycles(&view(&g)).is_empty());
    }
}
