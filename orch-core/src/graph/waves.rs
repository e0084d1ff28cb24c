//! Waves: a task without dependencies is in wave 1; any other task is one wave after its deepest
//! dependency. Tasks of one wave never depend on each other, so a wave can run in parallel.

use std::collections::HashMap;

use crate::wire::PlannedTask;

/// The wave of each task of a valid plan (see [`validate`](super::validate::validate)), in the plan's
/// order. Dependencies naming no task, and cycles, are ignored (a valid plan has neither).
pub fn plan_waves(tasks: &[PlannedTask]) -> Vec<u32> {
    let index: HashMap<&str, usize> = tasks.iter().enumerate().map(|(i, t)| (t.key.as_str(), i)).collect();
    let deps: Vec<Vec<usize>> =
        tasks.iter().map(|t| t.depends_on.iter().filter_map(|d| index.get(d.as_str()).copied()).collect()).collect();
    waves(&deps)
}

/// The wave of each node of a dependency graph (`deps[i]`: what `i` depends on), in topological order
/// (Kahn), so any depth is fine. Nodes on a cycle get wave 0.
pub fn waves(deps: &[Vec<usize>]) -> Vec<u32> {
    let n = deps.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds.iter().filter(|&&d| d < n) {
            dependents[d].push(i);
            waiting[i] += 1;
        }
    }
    let mut wave = vec![0u32; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    for &i in &ready {
        wave[i] = 1;
    }
    while let Some(i) = ready.pop() {
        for &j in &dependents[i] {
            wave[j] = wave[j].max(wave[i] + 1);
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(j);
            }
        }
    }
    wave
}

/// The wave of a task whose dependencies are in `dependency_waves`.
pub fn wave_after(dependency_waves: impl IntoIterator<Item = u32>) -> u32 {
    dependency_waves.into_iter().max().map_or(1, |w| w + 1)
}
