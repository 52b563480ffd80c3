//! What a QEMU `binfmt_misc` handler for one architecture looks like: the magic and mask
//! QEMU publishes, read from the installed package's files when present (systemd's
//! `binfmt.d` lines and Debian's `update-binfmts` descriptions), else from a built-in copy of
//! QEMU's table. Part of `ops`.

use std::path::{Path, PathBuf};

use crate::ops::emulation::binfmt::Flags;

/// A handler for one architecture, ready to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// The handler's name (`qemu-aarch64`).
    pub name: String,
    /// Where the magic starts.
    pub offset: usize,
    /// The ELF header bytes an executable of the architecture starts with.
    pub magic: Vec<u8>,
    /// Which bits of the magic count.
    pub mask: Vec<u8>,
    /// The emulator.
    pub interpreter: PathBuf,
    /// The flags as published; the caller adds `F`.
    pub flags: Flags,
    /// Where the definition came from (a file, or `built-in table`).
    pub origin: String,
}

impl Definition {
    /// An executable header of this architecture: the magic with the masked-out bits clear,
    /// long enough for any handler to test.
    pub fn sample_header(&self) -> Vec<u8> {
        let mut header = vec![0; self.offset];
        header.extend(
            self.magic
                .iter()
                .enumerate()
                .map(|(i, byte)| byte & self.mask.get(i).copied().unwrap_or(0xff)),
        );
        header.resize(header.len().max(64), 0);
        header
    }
}

// Compat: QEMU's scripts/qemu-binfmt-conf.sh magic and mask values (the ones Debian's
// qemu-user-static ships), for hosts whose QEMU came without binfmt descriptions.
const BUILT_IN: &str = r":qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:qemu-aarch64-static:PF
:qemu-arm:M::\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:qemu-arm-static:PF
:qemu-riscv64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:qemu-riscv64-static:PF
:qemu-ppc64le:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x15\x00:\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00:qemu-ppc64le-static:PF
:qemu-s390x:M::\x7fELF\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16:\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff:qemu-s390x-static:PF
:qemu-mips64el:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:qemu-mips64el-static:PF
:qemu-mips64:M::\x7fELF\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08:\xff\xff\xff\xff\xff\xff\xff\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff:qemu-mips64-static:PF
:qemu-loongarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x02\x01:\xff\xff\xff\xff\xff\xff\xff\xfc\x00\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:qemu-loongarch64-static:PF
:qemu-x86_64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00:\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:qemu-x86_64-static:PF
:qemu-i386:M::\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00:\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:qemu-i386-static:PF
";

/// Where definitions are looked for.
#[derive(Debug, Clone)]
pub struct Sources {
    /// systemd `binfmt.d` directories, most important first.
    pub binfmt_d: Vec<PathBuf>,
    /// Debian `update-binfmts` description directories.
    pub binfmts: Vec<PathBuf>,
    /// Directories searched for `qemu-<arch>-static` (the built-in table's interpreter).
    pub path: Vec<PathBuf>,
}

impl Sources {
    /// The host's: `/etc/binfmt.d` and `/usr/lib/binfmt.d`, `/usr/share/binfmts`, and `PATH`
    /// plus `/usr/bin`.
    pub fn host() -> Self {
        let mut path: Vec<PathBuf> =
            std::env::var_os("PATH").map_or_else(Vec::new, |p| std::env::split_paths(&p).collect());
        path.push(PathBuf::from("/usr/bin"));
        Sources {
            binfmt_d: vec!["/etc/binfmt.d".into(), "/usr/lib/binfmt.d".into()],
            binfmts: vec!["/usr/share/binfmts".into()],
            path,
        }
    }

    /// The handler for QEMU architecture `qemu` (`aarch64`): the first description whose
    /// interpreter exists, else the built-in table's entry with `qemu-<arch>-static` from
    /// the search path. `None` when nothing describes it or no emulator is installed.
    pub fn find(&self, qemu: &str) -> Option<Definition> {
        let name = format!("qemu-{qemu}");
        let described = self
            .binfmt_d
            .iter()
            .filter_map(|dir| read_binfmt_d(&dir.join(format!("{name}.conf"))))
            .chain(
                self.binfmts
                    .iter()
                    .filter_map(|dir| read_binfmts(&dir.join(&name), &name)),
            )
            .find(|definition| definition.name == name && definition.interpreter.is_file());
        described.or_else(|| {
            let mut built_in = parse_binfmt_d(BUILT_IN, "built-in table")
                .ok()?
                .into_iter()
                .find(|d| d.name == name)?;
            built_in.interpreter = self
                .path
                .iter()
                .map(|dir| dir.join(&built_in.interpreter))
                .find(|candidate| candidate.is_file())?;
            Some(built_in)
        })
    }

    /// The magic of architecture `qemu` whether or not an emulator is installed (to
    /// recognise a handler someone else registered).
    pub fn describe(&self, qemu: &str) -> Option<Definition> {
        self.find(qemu).or_else(|| {
            let name = format!("qemu-{qemu}");
            parse_binfmt_d(BUILT_IN, "built-in table")
                .ok()?
                .into_iter()
                .find(|d| d.name == name)
        })
    }

    /// The QEMU architectures an emulator is installed for (`qemu-<arch>-static` on the
    /// search path) and a definition exists, sorted.
    pub fn installed(&self) -> Vec<String> {
        let mut arches: Vec<String> = self
            .path
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_str()?.to_owned();
                Some(
                    name.strip_prefix("qemu-")?
                        .strip_suffix("-static")?
                        .to_owned(),
                )
            })
            .collect();
        arches.sort();
        arches.dedup();
        arches.retain(|arch| self.find(arch).is_some());
        arches
    }
}

fn read_binfmt_d(path: &Path) -> Option<Definition> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_binfmt_d(&text, &path.display().to_string())
        .ok()?
        .into_iter()
        .next()
}

fn read_binfmts(path: &Path, name: &str) -> Option<Definition> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_binfmts(name, &text, &path.display().to_string()).ok()
}

/// Parses systemd `binfmt.d` text: one `:name:type:offset:magic:mask:interpreter:flags`
/// per line (the first character is the separator), `#` and `;` comments. Only magic (`M`)
/// lines are definitions; extension lines are skipped.
pub fn parse_binfmt_d(text: &str, origin: &str) -> Result<Vec<Definition>, String> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let at = |message: String| format!("{origin}:{}: {message}", number + 1);
        let mut chars = line.chars();
        let separator = chars.next().ok_or_else(|| at("empty line".to_owned()))?;
        let fields: Vec<&str> = chars.as_str().split(separator).collect();
        let [name, kind, offset, magic, mask, interpreter, flags] = fields[..] else {
            return Err(at(format!(
                "expected 7 fields after `{separator}`, found {}",
                fields.len()
            )));
        };
        if kind != "M" {
            continue;
        }
        let magic = unescape(magic).map_err(&at)?;
        let mut mask = unescape(mask).map_err(&at)?;
        if mask.is_empty() {
            mask = vec![0xff; magic.len()];
        }
        if mask.len() != magic.len() {
            return Err(at("the mask is not as long as the magic".to_owned()));
        }
        out.push(Definition {
            name: name.to_owned(),
            offset: if offset.is_empty() {
                0
            } else {
                offset
                    .parse()
                    .map_err(|_| at(format!("bad offset `{offset}`")))?
            },
            magic,
            mask,
            interpreter: PathBuf::from(interpreter),
            flags: Flags::parse(flags).map_err(&at)?,
            origin: origin.to_owned(),
        });
    }
    Ok(out)
}

/// Parses a Debian `update-binfmts` description (`package`, `interpreter`, `magic`,
/// `offset`, `mask`, `credentials`, `fix_binary`, `preserve`, one `key value` per line).
pub fn parse_binfmts(name: &str, text: &str, origin: &str) -> Result<Definition, String> {
    let mut fields = std::collections::BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some((key, value)) = line.split_once(char::is_whitespace) {
            fields.insert(key, value.trim());
        }
    }
    let field = |key: &str| fields.get(key).copied();
    let yes = |key: &str| field(key) == Some("yes");
    let magic = unescape(field("magic").ok_or_else(|| format!("{origin}: no `magic`"))?)
        .map_err(|e| format!("{origin}: {e}"))?;
    let mask = match field("mask") {
        Some(mask) => unescape(mask).map_err(|e| format!("{origin}: {e}"))?,
        None => vec![0xff; magic.len()],
    };
    if mask.len() != magic.len() {
        return Err(format!("{origin}: the mask is not as long as the magic"));
    }
    let offset = match field("offset") {
        Some(offset) => offset
            .parse()
            .map_err(|_| format!("{origin}: bad offset `{offset}`"))?,
        None => 0,
    };
    Ok(Definition {
        name: name.to_owned(),
        offset,
        magic,
        mask,
        interpreter: PathBuf::from(
            field("interpreter").ok_or_else(|| format!("{origin}: no `interpreter`"))?,
        ),
        // Compat: update-binfmts turns `credentials yes` into `OC`, `preserve yes` into `P`
        // and `fix_binary yes` into `F`.
        flags: Flags {
            preserve_argv0: yes("preserve"),
            open_binary: yes("credentials"),
            credentials: yes("credentials"),
            fix_binary: yes("fix_binary"),
        },
        origin: origin.to_owned(),
    })
}

/// Decodes the kernel's escapes in magic and mask text: `\xHH`, `\\`, and plain bytes.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte != b'\\' {
            out.push(byte);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'x' | b'X') => {
                let hex = text
                    .get(i + 2..i + 4)
                    .ok_or_else(|| format!("incomplete escape in `{text}`"))?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .map_err(|_| format!("bad escape `\\x{hex}` in `{text}`"))?,
                );
                i += 4;
            }
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            _ => return Err(format!("unknown escape in `{text}`")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_CONF: &str = r":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF
";

    const DEBIAN_BINFMTS: &str = r"package qemu-user-static
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
magic \x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00
offset 0
mask \xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff
credentials no
fix_binary yes
preserve yes
";

    #[test]
    fn a_binfmt_d_line_parses() {
        let parsed = parse_binfmt_d(&format!("# QEMU\n\n{DEBIAN_CONF}"), "x.conf").unwrap();
        assert_eq!(parsed.len(), 1);
        let definition = &parsed[0];
        assert_eq!(definition.name, "qemu-aarch64");
        assert_eq!(definition.offset, 0);
        assert_eq!(&definition.magic[..4], b"\x7fELF");
        assert_eq!(definition.magic[18], 0xb7);
        assert_eq!(definition.mask[16], 0xfe);
        assert_eq!(
            definition.interpreter,
            Path::new("/usr/libexec/qemu-binfmt/aarch64-binfmt-P")
        );
        assert_eq!(definition.flags.to_string(), "POF");
    }

    #[test]
    fn both_debian_formats_describe_the_same_handler() {
        let conf = parse_binfmt_d(DEBIAN_CONF, "a").unwrap().remove(0);
        let binfmts = parse_binfmts("qemu-aarch64", DEBIAN_BINFMTS, "a").unwrap();
        // The `binfmt.d` line also asks for an open binary (`O`), which update-binfmts has
        // no key for without `credentials`.
        assert_eq!(binfmts.flags.to_string(), "PF");
        assert_eq!(
            Definition {
                flags: conf.flags,
                ..binfmts
            },
            conf
        );
    }

    #[test]
    fn literal_bytes_mix_with_escapes_and_other_separators_work() {
        let parsed = parse_binfmt_d(r",n,M,2,ELF\x02\\,\xff\xff\xff\xff\xff,/q,F", "x").unwrap();
        assert_eq!(parsed[0].magic, b"ELF\x02\\");
        assert_eq!(parsed[0].offset, 2);
        assert!(parsed[0].flags.fix_binary);
        // Extension handlers are not architectures.
        assert!(
            parse_binfmt_d(":jar:E::jar::/usr/bin/jexec:", "x")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let error = parse_binfmt_d("\n:a:M::\\x7:\n", "f.conf").unwrap_err();
        assert!(error.starts_with("f.conf:2:"), "{error}");
        assert!(parse_binfmt_d(r":a:M::\x01:\xff\xff:/q:F", "f").is_err());
        assert!(parse_binfmt_d(r":a:M::\x01::/q:Z", "f").is_err());
        assert!(parse_binfmt_d(r":a:M::\q::/q:", "f").is_err());
        assert!(parse_binfmts("a", "interpreter /q\n", "f").is_err());
    }

    #[test]
    fn the_built_in_table_parses_and_agrees_with_debian() {
        let table = parse_binfmt_d(BUILT_IN, "built-in table").unwrap();
        assert_eq!(table.len(), 10);
        let debian = parse_binfmt_d(DEBIAN_CONF, "a").unwrap().remove(0);
        let aarch64 = table.iter().find(|d| d.name == "qemu-aarch64").unwrap();
        assert_eq!(
            (&aarch64.magic, &aarch64.mask),
            (&debian.magic, &debian.mask)
        );
        for definition in &table {
            assert_eq!(definition.magic.len(), 20, "{}", definition.name);
            assert!(definition.flags.preserve_argv0 && definition.flags.fix_binary);
        }
    }

    #[test]
    fn descriptions_are_preferred_and_need_their_interpreter() {
        let root = tempfile::tempdir().unwrap();
        let conf = root.path().join("binfmt.d");
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let interpreter = bin.join("aarch64-binfmt-P");
        std::fs::write(
            conf.join("qemu-aarch64.conf"),
            DEBIAN_CONF.replace(
                "/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
                interpreter.to_str().unwrap(),
            ),
        )
        .unwrap();
        let sources = Sources {
            binfmt_d: vec![conf.clone()],
            binfmts: Vec::new(),
            path: vec![bin.clone()],
        };
        // No emulator anywhere: nothing to register, but the magic is still known.
        assert_eq!(sources.find("aarch64"), None);
        assert!(sources.installed().is_empty());
        assert_eq!(
            sources.describe("aarch64").unwrap().origin,
            "built-in table"
        );
        std::fs::write(bin.join("qemu-aarch64-static"), "").unwrap();
        let built_in = sources.find("aarch64").unwrap();
        assert_eq!(built_in.origin, "built-in table");
        assert_eq!(built_in.interpreter, bin.join("qemu-aarch64-static"));
        assert_eq!(sources.installed(), ["aarch64"]);
        std::fs::write(&interpreter, "").unwrap();
        let described = sources.find("aarch64").unwrap();
        assert_eq!(described.interpreter, interpreter);
        assert!(described.origin.ends_with("qemu-aarch64.conf"));
    }

    #[test]
    fn a_sample_header_matches_its_own_magic_only() {
        use crate::ops::emulation::binfmt::Matcher;
        let table = parse_binfmt_d(BUILT_IN, "t").unwrap();
        for definition in &table {
            let header = definition.sample_header();
            for other in &table {
                let matcher = Matcher::Magic {
                    offset: other.offset,
                    magic: other.magic.clone(),
                    mask: Some(other.mask.clone()),
                };
                assert_eq!(
                    matcher.matches(&header),
                    other.name == definition.name,
                    "{} against {}",
                    definition.name,
                    other.name
                );
            }
        }
    }
}
