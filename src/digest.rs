//! Content digests (`sha256:<hex>`) and the hashing helpers every content-addressed module uses.
//! Leaf: imports nothing from the crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A sha256 content digest, displayed and serialised as `sha256:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

/// The error returned when text is not a `sha256:<hex>` digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid digest `{0}`: expected `sha256:` followed by 64 hex digits")]
pub struct ParseDigestError(String);

impl Digest {
    /// Returns the digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Returns the digest of several byte strings, each prefixed with its length so that
    /// different splits of the same bytes never collide.
    pub fn of_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    /// Wraps 32 raw sha256 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Returns the raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns the 64 lowercase hex digits without the algorithm prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl Digest {
    /// Writes the hex digits into a stack buffer, so formatting never allocates (digests are
    /// formatted for every edge of every vertex when a graph is hashed).
    fn hex_buffer(&self) -> [u8; 64] {
        let mut buffer = [0u8; 64];
        // 64 bytes is exactly twice 32, so encoding cannot fail.
        let _ = hex::encode_to_slice(self.0, &mut buffer);
        buffer
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buffer = self.hex_buffer();
        let hex = std::str::from_utf8(&buffer).map_err(|_| fmt::Error)?;
        f.write_str("sha256:")?;
        f.write_str(hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseDigestError(text.to_owned());
        let hex_part = text.strip_prefix("sha256:").ok_or_else(error)?;
        if hex_part.len() != 64 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(error());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| error())?;
        Ok(Self(bytes))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 71];
        text[..7].copy_from_slice(b"sha256:");
        text[7..].copy_from_slice(&self.hex_buffer());
        match std::str::from_utf8(&text) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_value() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn digest_round_trips_through_text_and_rejects_garbage() {
        let digest = Digest::of(b"bake");
        assert_eq!(digest.to_string().parse::<Digest>(), Ok(digest));
        assert!("sha256:zz".parse::<Digest>().is_err());
        assert!("md5:00".parse::<Digest>().is_err());
    }

    #[test]
    fn parts_are_length_prefixed() {
        assert_ne!(
            Digest::of_parts([b"ab".as_slice(), b"c"]),
            Digest::of_parts([b"a".as_slice(), b"bc"])
        );
    }
}
