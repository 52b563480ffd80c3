//! The `bake` binary: runs [`bake::cli::run`] and turns its outcome into an exit code.

fn main() -> std::process::ExitCode {
    bake::cli::main()
}
