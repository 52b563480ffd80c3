//! The clap types for the `bake` command line, kept apart from what the commands do.

use clap::{ArgAction, Parser};

/// Build every image your bake files describe, with no daemon.
#[derive(Debug, Parser)]
#[command(
    name = "bake",
    version,
    about,
    long_about = None,
    after_help = "Commands:\n  bake debug graph TARGET   the build graph a target lowers to (JSON)\n  bake debug plan [TARGET]  the build requests, one per target and platform (JSON)\n  bake debug workers        the platforms this host builds for, and how\n  bake debug builders       the BuildKit builders bake can use, and what they answer\n  bake setup emulation      register QEMU binfmt_misc handlers (root; --arch, --uninstall)\n\nA target named `debug` or `setup` is built with `bake -- debug`."
)]
pub struct Args {
    /// Targets or groups to build (default: `default`); globs like 'app-*' match names. A
    /// git or HTTP(S) URL first reads the bake files from there (a remote definition).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Bake file to read (repeatable; `-` reads stdin). Default: the standard names in the
    /// current directory, or `BUILDX_BAKE_FILE`.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<String>,

    /// Override a target attribute: `<target>.<key>=<value>` or `+=` to append.
    #[arg(long = "set", value_name = "OVERRIDE")]
    pub set: Vec<String>,

    /// Set a variable: `NAME=VALUE` (wins over the environment).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub var: Vec<String>,

    /// Print the resolved targets as JSON and do not build.
    #[arg(long, conflicts_with = "list")]
    pub print: bool,

    /// List `targets` or `variables` (or `type=targets,format=json`).
    #[arg(long, value_name = "TYPE")]
    pub list: Option<String>,

    /// Frontend method: `build`, `check`, `outline` or `targets` (with `,format=json`).
    #[arg(long, value_name = "METHOD", default_value = "build")]
    pub call: String,

    /// Shorthand for `--call=check`.
    #[arg(long)]
    pub check: bool,

    /// Shorthand for `--set=*.output=type=docker`.
    #[arg(long)]
    pub load: bool,

    /// Shorthand for `--set=*.output=type=registry`.
    #[arg(long)]
    pub push: bool,

    /// Do not use the cache when building (`--no-cache=false` turns it off again).
    // Compat: buildx's boolean flags take a value only after `=`, so `--no-cache app` builds
    // `app`.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", action = ArgAction::Set)]
    pub no_cache: Option<bool>,

    /// Always look for newer versions of base images.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", action = ArgAction::Set)]
    pub pull: Option<bool>,

    /// Shorthand for `--set=*.attest=type=sbom,...`.
    #[arg(long, value_name = "VALUE")]
    pub sbom: Option<String>,

    /// Shorthand for `--set=*.attest=type=provenance,...`.
    #[arg(long, value_name = "VALUE")]
    pub provenance: Option<String>,

    /// Write build results (digests, descriptors) to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<String>,

    /// Progress output: `auto`, `plain`, `tty`, `quiet`, `rawjson` or `none`.
    #[arg(long, env = "BUILDKIT_PROGRESS", default_value = "auto", value_parser = ["auto", "plain", "tty", "quiet", "rawjson", "none"])]
    pub progress: String,

    /// Grant an entitlement (`network.host`, `security.insecure`, `fs.read=PATH`, ...).
    #[arg(long, value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,

    /// Build on a BuildKit daemon: a buildx builder instance (from `$BUILDX_CONFIG` or
    /// `~/.docker/buildx`), `default` (the Docker engine), or an endpoint
    /// (`unix:///run/buildkit/buildkitd.sock`, `tcp://host:1234`, `docker://`). Default:
    /// `BUILDX_BUILDER`, else buildx's current builder, else bake's own in-process solver.
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,

    /// State directory (snapshots, content store, cache). Default: `root` from the config
    /// file, else `/var/lib/bake` as root, `$XDG_DATA_HOME/bake` (or `~/.local/share/bake`)
    /// otherwise.
    #[arg(long, value_name = "DIR")]
    pub root: Option<std::path::PathBuf>,

    /// BuildKit daemon config (`buildkitd.toml`) to read, with BuildKit's own keys.
    ///
    /// Default: `/etc/buildkit/buildkitd.toml` as root, else
    /// `$XDG_CONFIG_HOME/buildkit/buildkitd.toml` (or `~/.config/buildkit/buildkitd.toml`); a
    /// missing default file means the defaults, a missing `--config` file is an error. bake
    /// acts on `root` (below `--root`); on `[worker.oci]` `binary` (the OCI runtime, `runc` by
    /// default, `crun` works too), `max-parallelism` (default: one step per CPU),
    /// `snapshotter` (`auto`, `overlayfs` or `native`) and `platforms` (the first is the
    /// default build platform, and nothing else builds); on the garbage-collection keys `gc`, `gckeepstorage`,
    /// `reservedSpace`, `maxUsedSpace` and `[[worker.oci.gcpolicy]]`; and on
    /// `[registry."host"]` `mirrors`, `http`, `insecure` and `ca`. Every other BuildKit key
    /// (`[dns]`, `[history]`, `[grpc]`, `[worker.containerd]`, registry client certificates,
    /// ...) is checked, then named in one warning as not acted on. Unknown keys are warnings;
    /// wrong types and bad values are errors.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Print debug logs.
    #[arg(short = 'D', long)]
    pub debug: bool,
}
