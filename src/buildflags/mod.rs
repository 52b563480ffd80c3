//! Typed CSV specs for `output`, `cache-from`/`cache-to`, `secret`, `ssh` and `attest`, as
//! buildx's `util/buildflags` parses them. Leaf (imports only `diag`).
