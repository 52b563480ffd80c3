//! The typed instructions and stages that parsing produces.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::diag::SourceFile;
use crate::frontend::dockerfile::parser::{Heredoc, Node};

/// The 18 instructions, lower case.
pub const INSTRUCTIONS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// A Dockerfile split into global ARGs and stages.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The source.
    pub file: SourceFile,
    /// The escape character.
    pub escape: char,
    /// `ARG`s before the first `FROM`.
    pub meta_args: Vec<Command>,
    /// Stages in file order.
    pub stages: Vec<Stage>,
}

/// One build stage: a `FROM` and the instructions after it.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Stage name after `AS`, lower case.
    pub name: Option<String>,
    /// Base image or stage, unexpanded.
    pub base: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// The `FROM` node.
    pub node: Node,
    /// Description from a `# <name> <text>` comment above `FROM`.
    pub description: String,
    /// Instructions after `FROM`.
    pub commands: Vec<Command>,
}

/// An instruction with the node it came from.
#[derive(Debug, Clone)]
pub struct Command {
    /// The typed instruction.
    pub instruction: Instruction,
    /// Where and how it was written.
    pub node: Node,
}

/// Exec form (JSON array) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// `["a", "b"]`.
    Exec(Vec<String>),
    /// `a b`, run through the shell.
    Shell(String),
}

/// A `key=value` pair of `ENV` or `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// Key, unexpanded.
    pub key: String,
    /// Value, unexpanded.
    pub value: String,
}

/// One `ARG` declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// Name.
    pub name: String,
    /// Default, unexpanded.
    pub default: Option<String>,
    /// Description from a comment above.
    pub description: String,
}

/// `COPY` or `ADD`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySpec {
    /// Sources, unexpanded (`<<EOF` for heredocs).
    pub sources: Vec<String>,
    /// Destination, unexpanded.
    pub dest: String,
    /// `--from` (COPY).
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude`.
    pub excludes: Vec<String>,
    /// `--checksum` (ADD).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD).
    pub keep_git_dir: bool,
    /// `--unpack` (ADD).
    pub unpack: Option<bool>,
    /// Heredoc sources.
    pub heredocs: Vec<Heredoc>,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// The command.
    pub command: CommandLine,
    /// `--mount` values.
    pub mounts: Vec<MountSpec>,
    /// `--network`.
    pub network: Option<String>,
    /// `--security`.
    pub security: Option<String>,
    /// `--device`.
    pub devices: Vec<String>,
    /// Heredocs after the line.
    pub heredocs: Vec<Heredoc>,
}

/// The type of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// `type=bind` (default).
    Bind,
    /// `type=cache`.
    Cache,
    /// `type=tmpfs`.
    Tmpfs,
    /// `type=secret`.
    Secret,
    /// `type=ssh`.
    Ssh,
}

/// One `RUN --mount=...`, values unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Mount type.
    pub kind: MountType,
    /// Options by canonical key (`target`, `source`, `from`, `id`, `sharing`, `mode`, `uid`,
    /// `gid`, `size`, `env`, `readonly`, `required`).
    pub options: BTreeMap<String, String>,
    /// Byte range of the flag.
    pub span: Range<usize>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthSpec {
    /// `HEALTHCHECK NONE`.
    None,
    /// `HEALTHCHECK [flags] CMD ...`.
    Cmd {
        /// The test command.
        command: CommandLine,
        /// `--interval`, `--timeout`, `--start-period`, `--start-interval` (raw) and
        /// `--retries`.
        flags: BTreeMap<String, String>,
    },
}

/// A typed instruction (everything but `FROM`, which starts a [`Stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `ADD`.
    Add(CopySpec),
    /// `ARG`.
    Arg(Vec<ArgDecl>),
    /// `CMD`.
    Cmd(CommandLine),
    /// `COPY`.
    Copy(CopySpec),
    /// `ENTRYPOINT`.
    Entrypoint(CommandLine),
    /// `ENV`.
    Env(Vec<KeyValue>),
    /// `EXPOSE`.
    Expose(Vec<String>),
    /// `HEALTHCHECK`.
    Healthcheck(HealthSpec),
    /// `LABEL`.
    Label(Vec<KeyValue>),
    /// `MAINTAINER`.
    Maintainer(String),
    /// `ONBUILD` with the trigger text.
    Onbuild(String),
    /// `RUN`.
    Run(RunSpec),
    /// `SHELL`.
    Shell(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `USER`.
    User(String),
    /// `VOLUME`.
    Volume(Vec<String>),
    /// `WORKDIR`.
    Workdir(String),
}
