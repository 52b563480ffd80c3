//! Archives by content: the compression a file uses (gzip, bzip2, xz, zstd or none, told by
//! its magic number, never its name), whether a tar stream is inside, and unpacking one
//! into a directory. Shared by `ADD` (ops) and tarball contexts over HTTP. Part of `source`.

use std::io::Read;
use std::path::Path;

/// The tar stream inside `path`, decompressed by its magic number (gzip, bzip2, xz, zstd or
/// none).
pub fn decompressed(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let mut magic = [0u8; 6];
    let mut file = std::fs::File::open(path)?;
    let read = read_up_to(&mut file, &mut magic)?;
    let file = std::fs::File::open(path)?;
    let magic = &magic[..read];
    Ok(match Compression::of(magic) {
        Some(Compression::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::new(file),
        )),
        Some(Compression::Bzip2) => Box::new(bzip2::read::MultiBzDecoder::new(
            std::io::BufReader::new(file),
        )),
        Some(Compression::Zstd) => Box::new(zstd::stream::read::Decoder::new(file)?),
        Some(Compression::Xz) => {
            // lzma-rs decodes into a writer, not as a reader: spool to an unnamed temp file.
            let mut spool = tempfile::tempfile()?;
            lzma_rs::xz_decompress(&mut std::io::BufReader::new(file), &mut spool)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            std::io::Seek::rewind(&mut spool)?;
            Box::new(spool)
        }
        None => Box::new(file),
    })
}

/// The compressions a local `ADD` archive may use.
enum Compression {
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    fn of(magic: &[u8]) -> Option<Self> {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Some(Self::Gzip)
        } else if magic.starts_with(b"BZh") {
            Some(Self::Bzip2)
        } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Self::Xz)
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Self::Zstd)
        } else {
            None
        }
    }
}

pub(crate) fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Whether `ADD` unpacks the file: a tar archive, compressed or not. Compat: BuildKit
/// decompresses by magic number and unpacks only if a tar header follows; anything else,
/// even a `.tar.gz` name over other bytes, is copied as a file.
pub fn is_archive(path: &Path) -> bool {
    let Ok(mut reader) = decompressed(path) else {
        return false;
    };
    let mut header = [0u8; 512];
    match read_up_to(&mut reader, &mut header) {
        Ok(512) => {
            let magic = &header[257..262];
            let checksum_ok = tar::Header::from_byte_slice(&header)
                .cksum()
                .is_ok_and(|sum| {
                    let mut computed: u32 = 0;
                    for (i, byte) in header.iter().enumerate() {
                        computed += if (148..156).contains(&i) {
                            32
                        } else {
                            u32::from(*byte)
                        };
                    }
                    computed == sum
                });
            magic == b"ustar" || checksum_ok
        }
        _ => false,
    }
}

/// Unpacks the tar archive at `path` (compressed or not) into `into`, every entry confined
/// to it as an image layer's is.
pub fn unpack(path: &Path, into: &Path, origin: &str) -> super::Result<()> {
    let reader = decompressed(path).map_err(super::error::io_error("read", path))?;
    crate::snapshot::apply_layer(into, reader).map_err(|source| super::Error::Unpack {
        url: origin.to_owned(),
        source: Box::new(source),
    })
}
