//! The metadata database `<root>/metadata.db`: named references (cache key → result record and
//! the blobs it needs) and leases. Part of `content`.
//!
//! SQLite in WAL mode lets readers and one writer work at once across processes; `busy_timeout`
//! makes a second writer wait instead of failing with `SQLITE_BUSY`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::content::error::{Error, Result};
use crate::digest::Digest;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS refs (
    name   TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ref_blobs (
    name   TEXT NOT NULL REFERENCES refs(name) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    PRIMARY KEY (name, digest)
);
CREATE TABLE IF NOT EXISTS leases (
    id      TEXT PRIMARY KEY,
    expires INTEGER
);
CREATE TABLE IF NOT EXISTS lease_blobs (
    lease  TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    PRIMARY KEY (lease, digest)
);
";

/// A named reference: a record (typically JSON) and the blobs it keeps alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The reference's name, for example a cache key.
    pub name: String,
    /// The caller's record, stored verbatim.
    pub record: String,
    /// The blobs this reference protects from garbage collection, sorted.
    pub blobs: Vec<Digest>,
}

/// A lease: while it lives, the blobs added to it survive garbage collection.
#[derive(Debug, PartialEq, Eq)]
pub struct Lease {
    pub(super) id: String,
}

impl Lease {
    /// Returns the lease's unique id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug)]
pub(super) struct Db {
    path: PathBuf,
    connection: Connection,
}

impl Db {
    pub(super) fn open(path: &Path) -> Result<Self> {
        let error = database_error("open", path);
        let connection = Connection::open(path).map_err(error)?;
        // Set the timeout first: switching to WAL itself needs a lock another process may hold.
        connection
            .busy_timeout(Duration::from_secs(30))
            .map_err(database_error("set busy timeout", path))?;
        // Several processes may create the same database at once. SQLite answers BUSY at
        // once, without the busy handler, when a read transaction must upgrade to write (it
        // would deadlock), so the whole setup is retried with a short backoff.
        let mut attempt = 0;
        loop {
            match Self::configure(&connection) {
                Ok(()) => break,
                Err(error) if is_busy(&error) && attempt < 200 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(10 + 5 * attempt.min(20)));
                }
                Err(error) => return Err(database_error("initialise", path)(error)),
            }
        }
        Ok(Self {
            path: path.to_owned(),
            connection,
        })
    }

    /// Switches to WAL and creates the tables; the schema goes in an IMMEDIATE transaction
    /// so it takes the write lock up front instead of upgrading a read lock.
    fn configure(connection: &Connection) -> rusqlite::Result<()> {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // FULL sync on commit: a reference must never outlive a crash while its blob does not.
        connection.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        connection
            .execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
            .inspect_err(|_| {
                let _ = connection.execute_batch("ROLLBACK;");
            })
    }

    pub(super) fn set_reference(&self, name: &str, record: &str, blobs: &[Digest]) -> Result<()> {
        self.transaction("set reference", |transaction| {
            transaction.execute(
                "INSERT INTO refs (name, record) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET record = excluded.record",
                params![name, record],
            )?;
            transaction.execute("DELETE FROM ref_blobs WHERE name = ?1", params![name])?;
            for digest in blobs {
                transaction.execute(
                    "INSERT OR IGNORE INTO ref_blobs (name, digest) VALUES (?1, ?2)",
                    params![name, digest.to_string()],
                )?;
            }
            Ok(())
        })
    }

    pub(super) fn reference(&self, name: &str) -> Result<Option<Reference>> {
        let error = database_error("read reference", &self.path);
        let record: Option<String> = self
            .connection
            .query_row(
                "SELECT record FROM refs WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )
            .optional()
            .map_err(error)?;
        let Some(record) = record else {
            return Ok(None);
        };
        let texts = self.strings(
            "SELECT digest FROM ref_blobs WHERE name = ?1 ORDER BY digest",
            name,
        )?;
        let blobs = texts
            .iter()
            .map(|text| parse_digest(text))
            .collect::<Result<_>>()?;
        Ok(Some(Reference {
            name: name.to_owned(),
            record,
            blobs,
        }))
    }

    pub(super) fn references(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let error = || database_error("list references", &self.path);
        let mut statement = self
            .connection
            .prepare("SELECT name, record FROM refs WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name")
            .map_err(error())?;
        statement
            .query_map(params![prefix], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(error())
    }

    pub(super) fn delete_reference(&self, name: &str) -> Result<()> {
        self.transaction("delete reference", |transaction| {
            transaction.execute("DELETE FROM refs WHERE name = ?1", params![name])?;
            Ok(())
        })
    }

    pub(super) fn create_lease(&self, id: &str, expires: Option<i64>) -> Result<()> {
        self.transaction("create lease", |transaction| {
            transaction.execute(
                "INSERT INTO leases (id, expires) VALUES (?1, ?2)",
                params![id, expires],
            )?;
            Ok(())
        })
    }

    pub(super) fn lease_blob(&self, id: &str, digest: &Digest) -> Result<()> {
        self.transaction("add blob to lease", |transaction| {
            transaction.execute(
                "INSERT OR IGNORE INTO lease_blobs (lease, digest) VALUES (?1, ?2)",
                params![id, digest.to_string()],
            )?;
            Ok(())
        })
    }

    pub(super) fn release_lease(&self, id: &str) -> Result<()> {
        self.transaction("release lease", |transaction| {
            transaction.execute("DELETE FROM leases WHERE id = ?1", params![id])?;
            Ok(())
        })
    }

    /// Drops expired leases and returns every blob a reference or a live lease holds.
    pub(super) fn live_blobs(&self, now: i64) -> Result<BTreeSet<Digest>> {
        self.transaction("expire leases", |transaction| {
            transaction.execute(
                "DELETE FROM leases WHERE expires IS NOT NULL AND expires <= ?1",
                params![now],
            )?;
            Ok(())
        })?;
        let mut statement = self
            .connection
            .prepare("SELECT digest FROM ref_blobs UNION SELECT digest FROM lease_blobs")
            .map_err(database_error("list live blobs", &self.path))?;
        let texts = statement
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(database_error("list live blobs", &self.path))?;
        texts.iter().map(|text| parse_digest(text)).collect()
    }

    fn strings(&self, sql: &str, parameter: &str) -> Result<Vec<String>> {
        let error = || database_error("query", &self.path);
        let mut statement = self.connection.prepare(sql).map_err(error())?;
        statement
            .query_map(params![parameter], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect())
            .map_err(error())
    }

    fn transaction(
        &self,
        action: &'static str,
        body: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<()> {
        // IMMEDIATE takes the write lock up front, so a busy database waits (busy_timeout)
        // instead of failing when a deferred transaction tries to upgrade.
        let run = || {
            let transaction = rusqlite::Transaction::new_unchecked(
                &self.connection,
                TransactionBehavior::Immediate,
            )?;
            body(&transaction)?;
            transaction.commit()
        };
        run().map_err(database_error(action, &self.path))
    }
}

fn parse_digest(text: &str) -> Result<Digest> {
    text.parse().map_err(|_| Error::BadDigest(text.to_owned()))
}

fn database_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl Fn(rusqlite::Error) -> Error + 'a {
    move |source| Error::Database {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Whether SQLite said another connection holds the lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(failure.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
