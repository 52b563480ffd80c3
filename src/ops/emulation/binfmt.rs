//! The kernel's `binfmt_misc` interface: reading the handlers under
//! `/proc/sys/fs/binfmt_misc`, and the lines written to its `register` file. Part of `ops`.
//!
//! The kernel prints a handler as `enabled`/`disabled`, `interpreter <path>`, `flags: <POCF>`,
//! then `offset`, `magic` and `mask` in hex (or `extension .<ext>`); it registers one from a
//! single write of `:name:type:offset:magic:mask:interpreter:flags` to `register`
//! (Documentation/admin-guide/binfmt-misc.rst).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where the host's `binfmt_misc` file system is mounted.
pub const DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The kernel reads a binary's first 256 bytes; magic and mask must fit in them.
const HEADER_SIZE: usize = 256;

/// A handler's flags (`flags:` in the kernel's text, in the order `POCF`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `P`: the interpreter receives the program's own `argv[0]`.
    pub preserve_argv0: bool,
    /// `O`: the interpreter receives an open file descriptor of the binary.
    pub open_binary: bool,
    /// `C`: credentials are computed from the binary (setuid works; implies `O`).
    pub credentials: bool,
    /// `F`: the interpreter is opened when the handler is registered, so it works inside
    /// containers whose root does not hold it.
    pub fix_binary: bool,
}

impl Flags {
    /// Parses flag letters (`OPF`, `F`, ``): unknown letters are an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut flags = Flags::default();
        for letter in text.trim().chars() {
            match letter.to_ascii_uppercase() {
                'P' => flags.preserve_argv0 = true,
                'O' => flags.open_binary = true,
                'C' => flags.credentials = true,
                'F' => flags.fix_binary = true,
                ' ' => {}
                other => return Err(format!("unknown flag `{other}`")),
            }
        }
        Ok(flags)
    }
}

impl std::fmt::Display for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (set, letter) in [
            (self.preserve_argv0, 'P'),
            (self.open_binary, 'O'),
            (self.credentials, 'C'),
            (self.fix_binary, 'F'),
        ] {
            if set {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// How a handler recognises the binaries it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Bytes at an offset of the file, compared under a mask.
    Magic {
        /// Where the magic starts in the file.
        offset: usize,
        /// The bytes.
        magic: Vec<u8>,
        /// Which bits of each byte count (all of them when absent).
        mask: Option<Vec<u8>>,
    },
    /// A file name extension (without the dot).
    Extension(String),
}

impl Matcher {
    /// Whether a file starting with `header` matches.
    pub fn matches(&self, header: &[u8]) -> bool {
        let Matcher::Magic {
            offset,
            magic,
            mask,
        } = self
        else {
            return false;
        };
        let Some(bytes) = header.get(*offset..offset + magic.len()) else {
            return false;
        };
        bytes
            .iter()
            .zip(magic)
            .enumerate()
            .all(|(i, (byte, want))| {
                let bits = mask
                    .as_ref()
                    .and_then(|m| m.get(i))
                    .copied()
                    .unwrap_or(0xff);
                byte & bits == want & bits
            })
    }
}

/// One registered handler, as `/proc/sys/fs/binfmt_misc/<name>` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// The file name under the `binfmt_misc` directory.
    pub name: String,
    /// Whether the handler is active.
    pub enabled: bool,
    /// The program the kernel starts with the binary.
    pub interpreter: PathBuf,
    /// Its flags.
    pub flags: Flags,
    /// What it recognises.
    pub matcher: Matcher,
}

impl Handler {
    /// Parses the kernel's text for handler `name`.
    pub fn parse(name: &str, text: &str) -> Result<Self, String> {
        let mut enabled = None;
        let mut interpreter = None;
        let mut flags = Flags::default();
        let mut offset = 0;
        let mut magic = None;
        let mut mask = None;
        let mut extension = None;
        for line in text.lines() {
            let (key, value) = line.split_once([' ', ':']).unwrap_or((line, ""));
            let value = value.trim_start_matches(':').trim();
            match key {
                "enabled" => enabled = Some(true),
                "disabled" => enabled = Some(false),
                "interpreter" => interpreter = Some(PathBuf::from(value)),
                "flags" => flags = Flags::parse(value)?,
                "offset" => {
                    offset = value.parse().map_err(|_| format!("bad offset `{value}`"))?;
                }
                "magic" => magic = Some(hex::decode(value).map_err(|e| format!("magic: {e}"))?),
                "mask" => mask = Some(hex::decode(value).map_err(|e| format!("mask: {e}"))?),
                "extension" => extension = Some(value.trim_start_matches('.').to_owned()),
                _ => {}
            }
        }
        let matcher = match (magic, extension) {
            (Some(magic), _) => Matcher::Magic {
                offset,
                magic,
                mask,
            },
            (None, Some(extension)) => Matcher::Extension(extension),
            (None, None) => return Err("neither `magic` nor `extension`".to_owned()),
        };
        Ok(Handler {
            name: name.to_owned(),
            enabled: enabled.ok_or("no `enabled` or `disabled` line")?,
            interpreter: interpreter.ok_or("no `interpreter` line")?,
            flags,
            matcher,
        })
    }
}

/// Whether the `binfmt_misc` file system is mounted at `dir` (its `register` file exists).
pub fn is_mounted(dir: &Path) -> bool {
    dir.join("register").exists()
}

/// Whether handlers apply at all: `status` says `enabled` (not mounted: no).
pub fn is_enabled(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("status")).is_ok_and(|s| s.trim() == "enabled")
}

/// Every handler registered under `dir`, sorted by name; entries the kernel describes in a
/// way this parser does not know are left out rather than guessed at.
pub fn handlers(dir: &Path) -> Vec<Handler> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Handler> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            if name == "register" || name == "status" {
                return None;
            }
            let text = std::fs::read_to_string(entry.path()).ok()?;
            Handler::parse(&name, &text).ok()
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The line that registers a magic handler: every magic and mask byte is written as `\xHH`,
/// so bytes that are the field separator or a backslash cannot end a field early.
pub fn register_line(
    name: &str,
    offset: usize,
    magic: &[u8],
    mask: &[u8],
    interpreter: &Path,
    flags: Flags,
) -> Result<String, String> {
    let interpreter_text = interpreter
        .to_str()
        .ok_or("interpreter path is not UTF-8")?;
    if name.is_empty() || name.contains([':', '/']) || name == "register" || name == "status" {
        return Err(format!("`{name}` cannot name a handler"));
    }
    if interpreter_text.contains(':') || !interpreter.is_absolute() {
        return Err(format!(
            "the interpreter `{interpreter_text}` must be an absolute path without `:`"
        ));
    }
    if magic.is_empty() || (!mask.is_empty() && mask.len() != magic.len()) {
        return Err("the mask must be as long as the magic".to_owned());
    }
    if offset + magic.len() > HEADER_SIZE {
        return Err(format!(
            "the magic must lie in the first {HEADER_SIZE} bytes"
        ));
    }
    let escape = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("\\x{b:02x}")).collect() };
    Ok(format!(
        ":{name}:M:{offset}:{}:{}:{interpreter_text}:{flags}",
        escape(magic),
        escape(mask)
    ))
}

/// Registers a handler from a line made by [`register_line`]; the kernel takes it from one
/// `write`.
pub fn register(dir: &Path, line: &str) -> std::io::Result<()> {
    write_once(&dir.join("register"), line.as_bytes())
}

/// Removes handler `name` (the kernel's `-1` command).
pub fn remove(dir: &Path, name: &str) -> std::io::Result<()> {
    write_once(&dir.join(name), b"-1")
}

fn write_once(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    let written = file.write(bytes)?;
    if written == bytes.len() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "the kernel took {written} of {} bytes",
            bytes.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AARCH64: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";

    #[test]
    fn the_kernels_text_parses_into_a_handler() {
        let handler = Handler::parse("qemu-aarch64", AARCH64).unwrap();
        assert!(handler.enabled);
        assert_eq!(
            handler.interpreter,
            Path::new("/usr/libexec/qemu-binfmt/aarch64-binfmt-P")
        );
        assert_eq!(
            handler.flags,
            Flags {
                preserve_argv0: true,
                open_binary: true,
                credentials: false,
                fix_binary: true
            }
        );
        assert_eq!(handler.flags.to_string(), "POF");
        let Matcher::Magic {
            offset,
            magic,
            mask,
        } = &handler.matcher
        else {
            panic!("a magic handler");
        };
        assert_eq!(*offset, 0);
        assert_eq!(magic.len(), 20);
        assert_eq!(magic[18], 0xb7);
        assert_eq!(mask.as_ref().unwrap()[16], 0xfe);
    }

    #[test]
    fn disabled_extension_and_flagless_handlers_parse() {
        let jar = Handler::parse(
            "jar",
            "disabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n",
        )
        .unwrap();
        assert!(!jar.enabled);
        assert_eq!(jar.flags, Flags::default());
        assert_eq!(jar.matcher, Matcher::Extension("jar".to_owned()));
        assert!(!jar.matcher.matches(b"PK\x03\x04"));
        assert!(Handler::parse("x", "enabled\nflags: F\nmagic 00\n").is_err());
        assert!(Handler::parse("x", "enabled\ninterpreter /x\nflags: Z\nmagic 00\n").is_err());
    }

    #[test]
    fn a_mask_decides_which_bits_of_the_header_count() {
        let handler = Handler::parse("qemu-aarch64", AARCH64).unwrap();
        let mut header = hex::decode("7f454c460201010000000000000000000200b700").unwrap();
        header.resize(64, 0);
        assert!(handler.matcher.matches(&header));
        // e_type 3 (a position-independent executable) differs only in a masked-out bit.
        header[16] = 3;
        assert!(handler.matcher.matches(&header));
        // Another machine (x86-64 is 0x3e) does not match.
        header[18] = 0x3e;
        assert!(!handler.matcher.matches(&header));
        assert!(!handler.matcher.matches(&header[..10]));
    }

    #[test]
    fn the_register_line_escapes_every_magic_byte() {
        let line = register_line(
            "qemu-x",
            0,
            b"\x7fE:\\",
            b"\xff\xff\xff\xfe",
            Path::new("/usr/bin/qemu-x-static"),
            Flags::parse("PF").unwrap(),
        )
        .unwrap();
        assert_eq!(
            line,
            r":qemu-x:M:0:\x7f\x45\x3a\x5c:\xff\xff\xff\xfe:/usr/bin/qemu-x-static:PF"
        );
        let no_mask = register_line("n", 4, b"\x01", b"", Path::new("/i"), Flags::default());
        assert_eq!(no_mask.unwrap(), r":n:M:4:\x01::/i:");
    }

    #[test]
    fn register_lines_the_kernel_would_reject_are_refused() {
        let flags = Flags::default();
        let interpreter = Path::new("/usr/bin/q");
        assert!(register_line("a:b", 0, b"\x01", b"", interpreter, flags).is_err());
        assert!(register_line("status", 0, b"\x01", b"", interpreter, flags).is_err());
        assert!(register_line("a", 0, b"\x01", b"\x01\x02", interpreter, flags).is_err());
        assert!(register_line("a", 255, b"\x01\x02", b"", interpreter, flags).is_err());
        assert!(register_line("a", 0, b"\x01", b"", Path::new("q"), flags).is_err());
        assert!(register_line("a", 0, b"\x01", b"", Path::new("/a:b"), flags).is_err());
    }

    #[test]
    fn handlers_lists_the_entries_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("register"), "").unwrap();
        std::fs::write(dir.path().join("status"), "enabled\n").unwrap();
        std::fs::write(dir.path().join("qemu-aarch64"), AARCH64).unwrap();
        std::fs::write(dir.path().join("broken"), "nonsense\n").unwrap();
        let found = handlers(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "qemu-aarch64");
        assert!(is_mounted(dir.path()));
        assert!(is_enabled(dir.path()));
        assert!(handlers(&dir.path().join("missing")).is_empty());
    }
}
