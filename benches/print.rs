//! Benchmarks for `bake --print` (filled in with the bake engine).

fn main() {}
