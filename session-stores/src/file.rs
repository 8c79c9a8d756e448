//! [`FileStore`]: one file per session in a directory.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sealed_session::{
    Record, RequestContext, SessionId, SessionIndex, SessionInfo, Store, StoreError, record_owner,
    version_matches,
};
use sha2::{Digest, Sha256};

use crate::sweep::DeleteExpired;
use crate::time::{now_ms, to_ms};

const BACKEND: &str = "file";
/// The directory of the per-owner indexes, inside the store's.
const OWNERS_DIR: &str = ".owners";
/// Temporary files older than this are leftovers of a crash.
const STALE_TMP: Duration = Duration::from_secs(600);

/// Keeps each session in its own file in a directory.
///
/// - File names are the SHA-256 of the id in hex (`<64 hex>.json`): fixed
///   length, lowercase, so no id can reach outside the directory and ids
///   that differ only in case stay apart on case-insensitive file systems.
/// - A file holds the expiry (milliseconds since the epoch) on its first
///   line, then the record as JSON.
/// - Writes are atomic: the record goes to a temporary file in the same
///   directory, which is then renamed over the old one. A reader sees the
///   old record or the new one, never half of one. Writes are not
///   `fsync`ed: a power cut may lose the last writes, not corrupt them.
/// - Writes, deletes and the removal of expired files hold an exclusive
///   lock on one of sixteen `.lock-<hex>` files (chosen by the first digit
///   of the file name), so [`compare_and_set`](Store::compare_and_set)
///   reads and replaces a record atomically, also against other processes
///   sharing the directory. Readers take no lock.
/// - Expired files are never returned and are removed when met;
///   [`delete_expired`](Self::delete_expired) (or a
///   [`spawn_sweeper`](crate::spawn_sweeper)) removes the rest.
///
/// - Per-user sessions ([`SessionIndex`]): a directory per owner,
///   `.owners/<SHA-256 of the owner in hex>/`, with one small file per
///   session of that owner, named as the session's file without `.json`
///   and holding the session id. It is written (under the session's lock,
///   before the record) only when a record with an owner is, so other
///   writes cost nothing more. An entry is a hint, checked against the
///   session file when listed; entries whose sessions expired, were
///   deleted or now belong to someone else are removed when the owner's
///   sessions are listed or written, and by
///   [`delete_expired`](Self::delete_expired).
///
/// Good for one process on one machine with modest traffic and no database;
/// prefer `SqliteStore` otherwise. Clones share the directory.
///
/// # Examples
///
/// ```no_run
/// use sealed_session::SessionEngine;
/// use sealed_session_stores::FileStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = FileStore::open("/var/lib/myapp/sessions").await?;
/// let engine = SessionEngine::builder().with_store(store).build()?;
/// # let _ = engine; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: Arc<PathBuf>,
}

impl FileStore {
    /// A store in `dir`, creating it (and its parents) when missing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] (backend `"file"`) when the directory cannot
    /// be created or is not a directory.
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        let path = dir.clone();
        blocking(move || {
            fs::create_dir_all(&path)?;
            if fs::metadata(&path)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", path.display()),
                ))
            }
        })
        .await?;
        Ok(Self { dir: Arc::new(dir) })
    }

    /// The directory the sessions are kept in.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds the session `id`.
    #[must_use]
    pub fn path_of(&self, id: &SessionId) -> PathBuf {
        self.dir.join(file_name(id))
    }

    /// Removes every session file past its expiry, and temporary files
    /// left by a crash; returns how many sessions were removed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the directory cannot be read. Files
    /// that vanish or cannot be read during the sweep are skipped.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        let dir = Arc::clone(&self.dir);
        blocking(move || sweep(&dir)).await
    }

    /// Writes `record` under the file's lock if `check` (given the file's
    /// path, with the lock held) says so; returns whether it wrote.
    async fn write_if(
        &self,
        id: &SessionId,
        record: &Record,
        expires_at: SystemTime,
        check: impl FnOnce(&Path) -> io::Result<bool> + Send + 'static,
    ) -> Result<bool, StoreError> {
        let json = to_json(record)?;
        let dir = Arc::clone(&self.dir);
        let name = file_name(id);
        let expires = to_ms(expires_at);
        // Most records have no owner: the lookup is all the index costs.
        let owner = record_owner(record).map(|owner| (owner_dir_name(owner), id.clone()));
        blocking(move || {
            let lock = lock(&dir, &name)?;
            let write = check(&dir.join(&name))?;
            if write {
                if let Some((owner, id)) = &owner {
                    // Before the record: a live owned session is never
                    // missing from its owner's index.
                    add_entry(&dir, owner, &name, id)?;
                }
                write_atomically(&dir, &name, expires, &json)?;
            }
            drop(lock);
            if let (true, Some((owner, _))) = (write, &owner) {
                // Best effort: the write is done, and a leftover entry is
                // only a hint that the next listing or sweep removes.
                if let Err(error) = prune_owner(&dir, owner, Some(&name)) {
                    tracing::debug!(
                        error = &error as &dyn std::error::Error,
                        "pruning a session index failed"
                    );
                }
            }
            Ok(write)
        })
        .await
    }

    /// The directory of `owner`'s index entries (see
    /// [`SessionIndex`]); missing while the owner has none.
    #[must_use]
    pub fn index_dir_of(&self, owner: &str) -> PathBuf {
        self.dir.join(OWNERS_DIR).join(owner_dir_name(owner))
    }
}

/// The name of an owner's index directory: the SHA-256 of the owner in
/// hex, safe as a file name whatever the owner is.
fn owner_dir_name(owner: &str) -> String {
    hex(&Sha256::digest(owner.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The index entry of the session file `name`: the same name without
/// `.json`.
fn entry_name(name: &str) -> &str {
    name.strip_suffix(".json").unwrap_or(name)
}

/// Writes the index entry of session `id` (file `name`) into the owner's
/// directory, creating it if missing.
fn add_entry(dir: &Path, owner: &str, name: &str, id: &SessionId) -> io::Result<()> {
    let owner_dir = dir.join(OWNERS_DIR).join(owner);
    let entry = owner_dir.join(entry_name(name));
    let mut tries = 0;
    loop {
        fs::create_dir_all(&owner_dir)?;
        match fs::write(&entry, id.as_str()) {
            // A sweep removed the directory, empty, meanwhile: again.
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => tries += 1,
            result => return result,
        }
    }
}

/// The session an index entry names, with its record, if it is live at
/// `now` and still owned by the owner of the directory `owner`.
fn entry_session(
    dir: &Path,
    owner: &str,
    entry: &str,
    now: u64,
) -> io::Result<Option<(SessionId, Record)>> {
    let Some(text) = read(&dir.join(OWNERS_DIR).join(owner).join(entry))? else {
        return Ok(None);
    };
    let Some(id) = std::str::from_utf8(&text).ok().and_then(SessionId::parse) else {
        return Ok(None);
    };
    let name = file_name(&id);
    if entry_name(&name) != entry {
        return Ok(None);
    }
    let record = match live_record(&dir.join(&name), now) {
        Ok(Some(record)) => record,
        Ok(None) => return Ok(None),
        // Not a session file we can read: not a session to list.
        Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(None),
        Err(e) => return Err(e),
    };
    let owned = record_owner(&record).is_some_and(|o| owner_dir_name(o) == owner);
    Ok(owned.then_some((id, record)))
}

/// Removes the index entry `entry` of `owner` if, under its session's
/// lock, it names no live session of the owner; returns whether it did.
fn prune_entry(dir: &Path, owner: &str, entry: &str) -> io::Result<bool> {
    let _lock = lock(dir, entry)?;
    if entry_session(dir, owner, entry, now_ms())?.is_some() {
        return Ok(false);
    }
    remove(&dir.join(OWNERS_DIR).join(owner).join(entry))?;
    Ok(true)
}

/// The names of the entries in `owner`'s index (none if it has none).
fn entries(dir: &Path, owner: &str) -> io::Result<Vec<String>> {
    let read = match fs::read_dir(dir.join(OWNERS_DIR).join(owner)) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in read {
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes the dead entries of `owner`'s index but `keep`'s.
fn prune_owner(dir: &Path, owner: &str, keep: Option<&str>) -> io::Result<()> {
    let now = now_ms();
    for entry in entries(dir, owner)? {
        if Some(entry.as_str()) == keep.map(entry_name) {
            continue;
        }
        if entry_session(dir, owner, &entry, now)?.is_none() {
            prune_entry(dir, owner, &entry)?;
        }
    }
    Ok(())
}

/// Removes every dead index entry, and the owners' directories left empty.
fn sweep_owners(dir: &Path) -> io::Result<()> {
    let owners = match fs::read_dir(dir.join(OWNERS_DIR)) {
        Ok(owners) => owners,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for owner in owners {
        let Ok(owner) = owner else { continue };
        let Ok(name) = owner.file_name().into_string() else {
            continue;
        };
        // Files that vanish or cannot be read are skipped, as in `sweep`.
        let _ = prune_owner(dir, &name, None);
        // Fails, harmlessly, unless the directory is empty.
        let _ = fs::remove_dir(owner.path());
    }
    Ok(())
}

fn file_name(id: &SessionId) -> String {
    let mut name = hex(&Sha256::digest(id.as_str().as_bytes()));
    name.push_str(".json");
    name
}

/// Runs blocking file work off the async threads.
async fn blocking<T, F>(work: F) -> Result<T, StoreError>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| StoreError::backend(BACKEND, e)),
        Err(join) => Err(StoreError::backend(BACKEND, join)),
    }
}

fn corrupt(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} is not a session file (no expiry line); delete it",
            path.display()
        ),
    )
}

/// Splits a session file into its expiry and its JSON.
fn parse(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(bytes.get(..newline)?).ok()?;
    Some((head.trim().parse().ok()?, bytes.get(newline + 1..)?))
}

fn to_json(record: &Record) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|source| StoreError::Serialization {
        backend: BACKEND,
        source,
    })
}

fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Holds the lock of the file `name` until dropped.
///
/// The lock is an advisory lock (`flock`, `LockFileEx`) on a lock file that
/// is never removed: a session file itself cannot carry it, since a write
/// renames a new file over it. Each call opens the lock file anew, because
/// two handles of one process exclude each other only when they are
/// different open files.
fn lock(dir: &Path, name: &str) -> io::Result<fs::File> {
    let stripe = name.get(..1).unwrap_or("0");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!(".lock-{stripe}")))?;
    file.lock()?;
    Ok(file)
}

/// The record stored at `path`, if there is one and it is live at `now`.
fn live_record(path: &Path, now: u64) -> io::Result<Option<Record>> {
    let Some(bytes) = read(path)? else {
        return Ok(None);
    };
    let (expires, json) = parse(&bytes).ok_or_else(|| corrupt(path))?;
    if expires <= now {
        return Ok(None);
    }
    serde_json::from_slice(json)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Removes `path` if it is still expired once its lock is held (a write
/// may have replaced it since it was read).
fn remove_if_expired(dir: &Path, name: &str, path: &Path) -> io::Result<bool> {
    let _lock = lock(dir, name)?;
    let Some(bytes) = read(path)? else {
        return Ok(false);
    };
    let expired = parse(&bytes).is_some_and(|(expires, _)| expires <= now_ms());
    if expired {
        remove(path)?;
    }
    Ok(expired)
}

fn write_atomically(dir: &Path, name: &str, head: u64, json: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".tmp-{}-{name}", SessionId::generate().as_str()));
    let result = (|| {
        let mut file = fs::File::create_new(&tmp)?;
        writeln!(file, "{head}")?;
        file.write_all(json)?;
        drop(file);
        fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sweep(dir: &Path) -> io::Result<u64> {
    let now = now_ms();
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if name.starts_with(".tmp-") {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TMP);
            if stale {
                let _ = remove(&path);
            }
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        // The expiry is on the first line: read no more than that.
        let mut head = [0u8; 32];
        let Ok(n) = fs::File::open(&path).and_then(|mut f| f.read(&mut head)) else {
            continue;
        };
        let expired = head
            .get(..n)
            .and_then(parse)
            .is_some_and(|(expires, _)| expires <= now);
        if expired && remove_if_expired(dir, name, &path).unwrap_or(false) {
            removed += 1;
        }
    }
    sweep_owners(dir)?;
    Ok(removed)
}

impl Store for FileStore {
    /// Never reads the request, so the adapters do not copy it.
    fn uses_request_context(&self) -> bool {
        false
    }

    async fn get(
        &self,
        id: &SessionId,
        _: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        let dir = Arc::clone(&self.dir);
        let name = file_name(id);
        let found = blocking(move || {
            let path = dir.join(&name);
            let Some(bytes) = read(&path)? else {
                return Ok(None);
            };
            let Some((expires, _)) = parse(&bytes) else {
                return Err(corrupt(&path));
            };
            if expires <= now_ms() {
                remove_if_expired(&dir, &name, &path)?;
                return Ok(None);
            }
            Ok(Some(bytes))
        })
        .await?;
        let Some(bytes) = found else { return Ok(None) };
        let json = parse(&bytes).map_or(&[][..], |(_, json)| json);
        let record: Record =
            serde_json::from_slice(json).map_err(|source| StoreError::Serialization {
                backend: BACKEND,
                source,
            })?;
        Ok(Some(Arc::new(record)))
    }

    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        self.write_if(id, &record, expires_at, |_| Ok(true)).await?;
        Ok(())
    }

    async fn delete(&self, id: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
        let dir = Arc::clone(&self.dir);
        let name = file_name(id);
        blocking(move || {
            let _lock = lock(&dir, &name)?;
            remove(&dir.join(&name))
        })
        .await
    }

    /// Under the file's lock: reads the stored `_version`, then writes as
    /// [`set`](Store::set) does if it is the one expected.
    async fn compare_and_set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        expected: Option<u64>,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        let written = self
            .write_if(id, &record, expires_at, move |path| {
                let live = live_record(path, now_ms())?;
                Ok(version_matches(live.as_ref(), expected))
            })
            .await?;
        if written {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }
}

/// See [the type's docs](FileStore) for the index's layout. Each entry is
/// checked, and removed or acted on, under its session's lock, so a
/// revocation racing a login either reaches the new session or runs
/// before it is written.
impl SessionIndex for FileStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let dir = Arc::clone(&self.dir);
        let owner_hex = owner_dir_name(owner);
        let live = blocking(move || {
            let now = now_ms();
            let mut live = Vec::new();
            for entry in entries(&dir, &owner_hex)? {
                match entry_session(&dir, &owner_hex, &entry, now)? {
                    Some(session) => live.push(session),
                    None => {
                        prune_entry(&dir, &owner_hex, &entry)?;
                    }
                }
            }
            Ok(live)
        })
        .await?;
        Ok(live
            .iter()
            .filter_map(|(id, record)| SessionInfo::from_record(id, record))
            .collect())
    }

    async fn revoke(&self, owner: &str, id: &SessionId) -> Result<bool, StoreError> {
        let dir = Arc::clone(&self.dir);
        let owner_hex = owner_dir_name(owner);
        let name = file_name(id);
        blocking(move || {
            let _lock = lock(&dir, &name)?;
            let entry = entry_name(&name);
            let owned = entry_session(&dir, &owner_hex, entry, now_ms())?.is_some();
            if owned {
                remove(&dir.join(&name))?;
            }
            // Live or not, the entry has no session of the owner to name now.
            remove(&dir.join(OWNERS_DIR).join(&owner_hex).join(entry))?;
            Ok(owned)
        })
        .await
    }

    async fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let dir = Arc::clone(&self.dir);
        let owner_hex = owner_dir_name(owner);
        let keep = except.map(file_name);
        blocking(move || {
            let mut revoked = 0;
            for entry in entries(&dir, &owner_hex)? {
                if keep.as_deref().map(entry_name) == Some(entry.as_str()) {
                    continue;
                }
                let _lock = lock(&dir, &entry)?;
                if let Some((id, _)) = entry_session(&dir, &owner_hex, &entry, now_ms())? {
                    remove(&dir.join(file_name(&id)))?;
                    revoked += 1;
                }
                remove(&dir.join(OWNERS_DIR).join(&owner_hex).join(&entry))?;
            }
            Ok(revoked)
        })
        .await
    }
}

impl DeleteExpired for FileStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        FileStore::delete_expired(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_fixed_hex() {
        let name = file_name(&SessionId::parse("AAAAAAAAAAAAAAAAAAAA").unwrap());
        let other = file_name(&SessionId::parse("aaaaaaaaaaaaaaaaaaaa").unwrap());
        assert_eq!(name.len(), 69);
        assert_ne!(name, other);
        assert!(
            name.trim_end_matches(".json")
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn only_a_file_still_expired_under_its_lock_is_removed() {
        let dir = std::env::temp_dir().join(format!("file-expired-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let name = file_name(&SessionId::generate());
        let path = dir.join(&name);
        // Written anew since it was read as expired: kept.
        write_atomically(&dir, &name, now_ms() + 60_000, b"{}").unwrap();
        assert!(!remove_if_expired(&dir, &name, &path).unwrap());
        assert!(path.exists());
        write_atomically(&dir, &name, now_ms() - 1, b"{}").unwrap();
        assert!(remove_if_expired(&dir, &name, &path).unwrap());
        assert!(!path.exists());
        assert!(!remove_if_expired(&dir, &name, &path).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The live record's `_version`, as `compare_and_set` compares it.
    fn live_version(path: &Path, now: u64) -> io::Result<Option<Option<u64>>> {
        Ok(live_record(path, now)?
            .as_ref()
            .map(sealed_session::read_version))
    }

    #[test]
    fn a_live_version_is_read_under_the_same_rules_as_read_version() {
        let dir = std::env::temp_dir().join(format!("file-version-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.json");
        let now = now_ms();
        assert_eq!(live_version(&path, now).unwrap(), None);
        for (json, version) in [
            (&br#"{"_version":7}"#[..], Some(Some(7))),
            (br#"{"_version":-1}"#, Some(None)),
            (br#"{"a":1}"#, Some(None)),
        ] {
            write_atomically(&dir, "v.json", now + 1, json).unwrap();
            assert_eq!(live_version(&path, now).unwrap(), version);
        }
        write_atomically(&dir, "v.json", now, br#"{"_version":7}"#).unwrap();
        assert_eq!(live_version(&path, now).unwrap(), None, "expired");
        write_atomically(&dir, "v.json", now + 1, b"[1]").unwrap();
        assert!(live_version(&path, now).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parse_needs_an_expiry_line() {
        assert_eq!(parse(b"12\n{}"), Some((12, &b"{}"[..])));
        assert_eq!(parse(b"{}"), None);
        assert_eq!(parse(b"x\n{}"), None);
        assert_eq!(parse(b""), None);
    }
}
