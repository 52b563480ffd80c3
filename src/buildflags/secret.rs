//! The `secret` spec: its CSV and object forms, and its value read from the host (the
//! embedded solver reads it once per build, a BuildKit session each time the daemon asks).
//! Part of `buildflags`.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::csv::split_fields;
use super::error::{Error, Result};
use super::unavailable::Unavailable;

/// A build secret (`secret`): an id and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Secret {
    /// The id `RUN --mount=type=secret,id=` refers to.
    pub id: String,
    /// A file to read the value from.
    pub src: String,
    /// An environment variable to read the value from.
    pub env: String,
}

impl Secret {
    /// Parses `id=x,src=path` / `id=x,env=VAR` / `type=env,id=x,src=VAR`.
    // Compat: buildx Secret.UnmarshalText (util/buildflags/secrets.go).
    pub fn parse(input: &str) -> Result<Self> {
        let pairs = split_fields(input)?
            .into_iter()
            .map(|field| match field.split_once('=') {
                Some((key, value)) => Ok((key.to_lowercase(), value.to_owned())),
                None => Err(Error::NotKeyValue { field }),
            })
            .collect::<Result<Vec<_>>>()?;
        Self::from_pairs(input, pairs)
    }

    /// Builds a secret from `key=value` pairs (the object form).
    pub fn from_pairs(input: &str, pairs: Vec<(String, String)>) -> Result<Self> {
        let mut secret = Self::default();
        let mut kind = String::new();
        for (key, value) in pairs {
            match key.as_str() {
                "type" if value == "file" || value == "env" => kind = value,
                "type" => {
                    return Err(Error::BadValue {
                        key,
                        value,
                        reason: "expected `file` or `env`".to_owned(),
                    });
                }
                "id" => secret.id = value,
                "source" | "src" => secret.src = value,
                "env" => secret.env = value,
                _ => {
                    return Err(Error::UnknownKey {
                        key,
                        input: input.to_owned(),
                    });
                }
            }
        }
        if kind == "env" && secret.env.is_empty() {
            secret.env = std::mem::take(&mut secret.src);
        }
        Ok(secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let fields = [("id", &self.id), ("src", &self.src), ("env", &self.env)];
        let count = fields.iter().filter(|(_, v)| !v.is_empty()).count();
        let mut out = serializer.serialize_struct("Secret", count)?;
        for (name, value) in fields {
            if !value.is_empty() {
                out.serialize_field(name, value)?;
            }
        }
        out.end()
    }
}

impl Secret {
    /// Reads the value now: from `env=`, from `src=`, or (neither given) from the
    /// environment variable named like the id if it is set, else the file named like it.
    /// A relative file is relative to the working directory.
    // Compat: buildkit secretsprovider.NewStore: an id alone means the env variable, then
    // the file.
    pub fn read(&self) -> std::result::Result<Vec<u8>, Unavailable> {
        let from_env = |name: &str| {
            std::env::var_os(name)
                .map(std::ffi::OsString::into_encoded_bytes)
                .ok_or_else(|| Unavailable::SecretEnv {
                    id: self.id.clone(),
                    name: name.to_owned(),
                })
        };
        let from_file = |path: &str| {
            std::fs::read(path).map_err(|error| Unavailable::SecretFile {
                id: self.id.clone(),
                path: path.to_owned(),
                error,
            })
        };
        if !self.env.is_empty() {
            from_env(&self.env)
        } else if !self.src.is_empty() {
            from_file(&self.src)
        } else if std::env::var_os(&self.id).is_some() {
            from_env(&self.id)
        } else {
            from_file(&self.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_reads_its_file_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "one").unwrap();
        let secret = Secret::parse(&format!("id=tok,src={}", path.display())).unwrap();
        assert_eq!(secret.read().unwrap(), b"one");
        std::fs::write(&path, "two").unwrap();
        assert_eq!(secret.read().unwrap(), b"two");
        std::fs::remove_file(&path).unwrap();
        let error = secret.read().unwrap_err().to_string();
        assert!(error.starts_with("secret `tok`: failed to read"), "{error}");
    }
}
