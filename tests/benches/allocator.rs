//! The benchmarks run on the allocator of the `orch` binary (mimalloc, see orch-web/src/main.rs), so
//! they measure the engine as the binary runs it; their same-run baselines use it too.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
