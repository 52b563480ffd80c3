//! The contract between front ends and the solver: ops, vertices, definitions and their
//! content digests. Layer 1. Imports only leaves.
