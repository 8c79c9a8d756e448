//! The handle a handler gets: [`Session<T>`].

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::clock::Clock;
use crate::data::{SessionAccessors, SessionData, SessionMap, Written};
use crate::id::SessionId;
use crate::record::{
    CREATED_KEY, Changes, EXPIRES_KEY, NewRecord, OWNER_KEY, RESERVED_KEYS, Record, is_empty_value,
    same_record,
};

/// A request's session.
///
/// Cheap to clone: clones share one state, which the adapter commits when
/// the response is sent. All methods are synchronous: the session is loaded
/// before the handler sees it.
///
/// `T` is the session's data: [`SessionMap`] (untyped, the default) or your
/// own struct with `#[derive(SessionData)]`. Name your type once with an
/// alias, `type Session = sealed_session::Session<MySession>;`, instead of
/// repeating it in every handler.
///
/// # Examples
///
/// ```
/// use sealed_session::{Session, SessionMap};
///
/// fn login(session: &Session<SessionMap>, user: &str) {
///     session.regenerate(); // new id at login: no session fixation
///     session.set("userId", user);
///     session.flash("message", "Welcome back");
/// }
///
/// let session = Session::<SessionMap>::detached();
/// login(&session, "42");
/// assert_eq!(session.get::<String>("userId").as_deref(), Some("42"));
/// assert!(session.has_changed());
/// ```
///
/// # Accessors
///
/// A `Session<T>` dereferences to `T::Accessors` (see
/// [`SessionData::Accessors`]): the typed methods `#[derive(SessionData)]`
/// generates (`session.user_id()`, `session.set_user_id(..)`, ...) or, for
/// [`SessionMap`], `get`/`set`/`remove`/`flash`. They are plain methods:
/// no trait to import.
pub struct Session<T: SessionData = SessionMap> {
    accessors: T::Accessors,
}

impl<T: SessionData> Clone for Session<T> {
    fn clone(&self) -> Self {
        Self {
            accessors: T::Accessors::from_handle(self.handle().clone()),
        }
    }
}

impl<T: SessionData> Deref for Session<T> {
    type Target = T::Accessors;

    fn deref(&self) -> &T::Accessors {
        &self.accessors
    }
}

/// The shared state behind a [`Session`], as its accessors see it.
///
/// Every `T::Accessors` type wraps one (see [`SessionAccessors`]). It offers
/// the building blocks accessors are made of: [`read`](Self::read),
/// [`update`](Self::update), [`flash_with`](Self::flash_with), and the
/// change-tracking [`set_tracked`](Self::set_tracked) and
/// [`flash_tracked`](Self::flash_tracked).
///
/// `Handle<T>` is itself an accessors type with no accessor of its own: a
/// hand-written [`SessionData`] implementation can say
/// `type Accessors = Handle<Self>;` and reach its data through
/// [`Session::read`] and [`Session::update`].
pub struct Handle<T> {
    inner: Arc<Mutex<State<T>>>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl<T: SessionData> SessionAccessors<T> for Handle<T> {
    fn from_handle(handle: Handle<T>) -> Self {
        handle
    }

    fn handle(&self) -> &Handle<T> {
        self
    }
}

/// Locks a session's state. A handler that panicked while holding the
/// lock cannot leave the state torn in a way that matters more than losing
/// the request.
fn lock_state<T>(state: &Mutex<State<T>>) -> MutexGuard<'_, State<T>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct State<T> {
    pub(crate) data: T,
    pub(crate) meta: Meta,
}

/// Everything about a session but its data; not generic, so the engine's
/// commit step is not either.
pub(crate) struct Meta {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_age_ms: u64,
    /// Store mode: the id in the cookie (or to be written).
    pub(crate) id: Option<SessionId>,
    /// The record as loaded; `None` for a new session.
    pub(crate) loaded: Option<Arc<Record>>,
    pub(crate) expires_ms: u64,
    pub(crate) initial_expires_ms: u64,
    /// `_flashKeys` as loaded (what `has_changed` compares with).
    pub(crate) initial_flash_keys: Vec<String>,
    /// Fields flashed in this request: kept for the next one.
    pub(crate) flash_keys: Vec<String>,
    /// Fields flashed in the previous request: removed at commit.
    pub(crate) old_flash_keys: Vec<String>,
    /// The data may have been changed through `&mut` access.
    pub(crate) dirty: bool,
    /// Tracked fields (bit `i` is `T::TRACKED_KEYS[i]`) that setters
    /// changed; their values are compared at commit, the others are not
    /// serialised at all.
    pub(crate) changed_fields: u128,
    pub(crate) destroyed: bool,
    pub(crate) force_write: bool,
    pub(crate) regenerate: bool,
    /// Sealed with an old key: write again with the newest one.
    pub(crate) reseal: bool,
    /// Chunk cookies the request carried, to expire the unused ones.
    pub(crate) chunks_seen: u8,
    /// With a max lifetime: when the session was made, and the latest
    /// expiry it may ever have.
    pub(crate) created_ms: Option<u64>,
    pub(crate) expiry_cap_ms: Option<u64>,
    /// Stateless mode: the record lives in the overflow store under this id.
    pub(crate) overflow_id: Option<SessionId>,
    /// The loaded record's `_version` (optimistic concurrency).
    pub(crate) loaded_version: Option<u64>,
    /// `_owner`: as loaded, or set or cleared in this request.
    pub(crate) owner: OwnerChange,
}

/// Where [`OWNER_KEY`] is in `RESERVED_KEYS`.
const OWNER_INDEX: usize = 5;
const _: () = assert!(matches!(RESERVED_KEYS[OWNER_INDEX].as_bytes(), b"_owner"));

/// What a request did to the session's owner ([`OWNER_KEY`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OwnerChange {
    /// Nothing: the loaded record's owner (if any) stays.
    Kept,
    /// [`Session::set_owner`]: the new `_owner` object.
    Set(Value),
    /// [`Session::clear_owner`].
    Cleared,
}

impl Meta {
    pub(crate) fn new_session(
        clock: Arc<dyn Clock>,
        max_age_ms: u64,
        id: Option<SessionId>,
    ) -> Self {
        let now_ms = clock.now_ms();
        Self::new_session_at(clock, max_age_ms, id, now_ms)
    }

    /// [`new_session`](Self::new_session) at `now_ms`, read from `clock`
    /// by the caller.
    pub(crate) fn new_session_at(
        clock: Arc<dyn Clock>,
        max_age_ms: u64,
        id: Option<SessionId>,
        now_ms: u64,
    ) -> Self {
        let expires_ms = now_ms.saturating_add(max_age_ms);
        Self {
            clock,
            max_age_ms,
            id,
            loaded: None,
            expires_ms,
            initial_expires_ms: expires_ms,
            initial_flash_keys: Vec::new(),
            flash_keys: Vec::new(),
            old_flash_keys: Vec::new(),
            dirty: false,
            changed_fields: 0,
            destroyed: false,
            force_write: false,
            regenerate: false,
            reseal: false,
            chunks_seen: 0,
            created_ms: None,
            expiry_cap_ms: None,
            overflow_id: None,
            loaded_version: None,
            owner: OwnerChange::Kept,
        }
    }
}

impl Meta {
    /// The `_owner` value the session has now.
    fn owner_value(&self) -> Option<&Value> {
        match &self.owner {
            OwnerChange::Kept => self.loaded.as_ref()?.get(OWNER_KEY),
            OwnerChange::Set(owner) => Some(owner),
            OwnerChange::Cleared => None,
        }
    }

    /// Marks `key` as flashed in this request.
    fn flash(&mut self, key: &str) {
        if !self.flash_keys.iter().any(|k| k == key) {
            self.flash_keys.push(key.to_owned());
        }
        self.old_flash_keys.retain(|k| k != key);
    }

    /// Marks tracked field `index` as changed.
    fn mark_changed(&mut self, index: usize) {
        match u32::try_from(index).ok().and_then(|i| 1u128.checked_shl(i)) {
            Some(bit) => self.changed_fields |= bit,
            // More fields than bits: fall back to comparing whole records.
            None => self.dirty = true,
        }
    }
}

/// What the commit step has to do, worked out from a session's state.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Nothing changed and nothing forced a write: no cookie, no store call.
    Unchanged,
    /// `destroy()`: delete the store entry (if saved) and expire both cookies.
    Destroy {
        id: Option<SessionId>,
        chunks: u8,
        overflow_id: Option<SessionId>,
    },
    /// Write the record (store mode: under `id`): whole and shared, so
    /// that the store keeps the allocation the record was built in, or as
    /// changes to the loaded record.
    Write {
        record: NewRecord,
        id: Option<SessionId>,
        /// `regenerate()`: expire the cookies first, delete this id (store
        /// mode, if it was saved) before writing under the new one.
        regenerated: Option<Option<SessionId>>,
        expires_ms: u64,
        /// Chunk cookies the request carried.
        chunks: u8,
        /// Stateless mode: the overflow record the session was loaded from.
        overflow_id: Option<SessionId>,
        /// The version the store must still hold for a compare-and-set
        /// (`None`: the id must be new).
        expected_version: Option<u64>,
    },
}

impl<T> Handle<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        lock_state(&self.inner)
    }
}

impl<T: SessionData> Handle<T> {
    /// Reads the data; see [`Session::read`].
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.lock().data)
    }

    /// Changes the data; see [`Session::update`].
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut state = self.lock();
        state.meta.dirty = true;
        f(&mut state.data)
    }

    /// Changes the data and flashes `key`; see [`Session::flash_with`].
    pub fn flash_with<R>(&self, key: &str, f: impl FnOnce(&mut T) -> R) -> R {
        let mut state = self.lock();
        state.meta.dirty = true;
        let out = f(&mut state.data);
        state.meta.flash(key);
        out
    }

    /// Sets a tracked field to `value`, returning the old value: `field`
    /// points at the field, `index` is its place in
    /// [`SessionData::TRACKED_KEYS`]. The derive's `set_<field>` is this.
    ///
    /// The field counts as changed only if its
    /// [`tracked_value`](SessionData::tracked_value) differs before and
    /// after (`null`, `[]` and `{}` being alike: none of them is written),
    /// so setting the value a field already has is no change. Unlike
    /// [`update`](Self::update), this keeps a read-only request free of any
    /// serialisation, and a write serialises only the changed fields.
    pub fn set_tracked<V>(
        &self,
        index: usize,
        field: impl FnOnce(&mut T) -> &mut V,
        value: V,
    ) -> V {
        let mut state = self.lock();
        state.set_tracked(index, field, value)
    }

    /// [`set_tracked`](Self::set_tracked), and flashes the field: it
    /// survives the next request, then disappears. The derive's
    /// `flash_<field>` is this.
    pub fn flash_tracked<V>(
        &self,
        index: usize,
        field: impl FnOnce(&mut T) -> &mut V,
        value: V,
    ) -> V {
        let mut state = self.lock();
        let old = state.set_tracked(index, field, value);
        match T::TRACKED_KEYS.get(index) {
            Some(key) => state.meta.flash(key),
            None => state.meta.dirty = true,
        }
        old
    }
}

impl<T: SessionData> State<T> {
    fn set_tracked<V>(
        &mut self,
        index: usize,
        field: impl FnOnce(&mut T) -> &mut V,
        value: V,
    ) -> V {
        if index >= T::TRACKED_KEYS.len() {
            // Not a tracked field after all: compare whole records.
            self.meta.dirty = true;
        }
        let before = self.data.tracked_value(index);
        let old = std::mem::replace(field(&mut self.data), value);
        let after = self.data.tracked_value(index);
        let same = match (before, after) {
            (Ok(a), Ok(b)) => {
                a == b || (crate::record::is_empty_value(&a) && crate::record::is_empty_value(&b))
            }
            // Let the commit report the error.
            _ => false,
        };
        if !same {
            self.meta.mark_changed(index);
        }
        old
    }
}

impl<T: SessionData> Session<T> {
    pub(crate) fn from_state(data: T, meta: Meta) -> Self {
        let handle = Handle {
            inner: Arc::new(Mutex::new(State { data, meta })),
        };
        Self {
            accessors: T::Accessors::from_handle(handle),
        }
    }

    fn handle(&self) -> &Handle<T> {
        self.accessors.handle()
    }

    /// A new, empty session that belongs to no engine: for unit tests of
    /// code that takes a `Session`.
    #[must_use]
    pub fn detached() -> Self {
        Self::from_state(
            T::default(),
            Meta::new_session(Arc::new(crate::clock::SystemClock), 86_400_000, None),
        )
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.handle().lock()
    }

    /// Reads the data.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sealed_session::{Session, SessionMap};
    /// let session = Session::<SessionMap>::detached();
    /// assert!(session.read(|data| data.is_empty()));
    /// ```
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.handle().read(f)
    }

    /// Changes the data. Whether it really changed is decided at commit by
    /// comparing with what was loaded, so an update that leaves the data as
    /// it was writes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sealed_session::{Session, SessionMap};
    /// let session = Session::<SessionMap>::detached();
    /// session.update(|data| data.insert("count", 1));
    /// assert!(session.has_changed());
    /// ```
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.handle().update(f)
    }

    /// Replaces the data.
    pub fn replace(&self, data: T) -> T {
        self.update(|current| std::mem::replace(current, data))
    }

    /// Changes the data and marks `key` (the field's name in the record) as
    /// flashed: it survives the next request, then disappears. The building
    /// block of typed flash (`flash_<field>` from the derive).
    pub fn flash_with<R>(&self, key: &str, f: impl FnOnce(&mut T) -> R) -> R {
        self.handle().flash_with(key, f)
    }

    /// Keeps the fields flashed in the previous request for one more
    /// request (useful across a redirect).
    pub fn reflash(&self) {
        let mut state = self.lock();
        let meta = &mut state.meta;
        if meta.old_flash_keys.is_empty() {
            return;
        }
        let mut keys = std::mem::take(&mut meta.old_flash_keys);
        for key in meta.flash_keys.drain(..) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        meta.flash_keys = keys;
    }

    /// Moves the expiry to now + the engine's max age, and forces a write.
    pub fn renew(&self) {
        let max_age = self.lock().meta.max_age_ms;
        self.renew_ms(max_age);
    }

    /// Moves the expiry to now + `max_age`, and forces a write.
    pub fn renew_for(&self, max_age: Duration) {
        self.renew_ms(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
    }

    fn renew_ms(&self, max_age_ms: u64) {
        let mut state = self.lock();
        let meta = &mut state.meta;
        let expires = meta.clock.now_ms().saturating_add(max_age_ms);
        meta.expires_ms = meta.expiry_cap_ms.map_or(expires, |cap| expires.min(cap));
        meta.force_write = true;
    }

    /// Gives the session a new id and forces a write; the old store entry
    /// is deleted, not overwritten. Call it when the user logs in (or their
    /// privileges change) so that an id planted before login is worthless.
    pub fn regenerate(&self) {
        let mut state = self.lock();
        state.meta.regenerate = true;
        state.meta.force_write = true;
    }

    /// Ends the session: the store entry is deleted and both cookies
    /// expire. Later changes in the same request are not saved.
    pub fn destroy(&self) {
        self.lock().meta.destroyed = true;
    }

    /// Whether [`destroy`](Self::destroy) was called.
    #[must_use]
    pub fn is_destroyed(&self) -> bool {
        self.lock().meta.destroyed
    }

    /// Whether the data (or its expiry, or its flash) differs from what was
    /// loaded.
    #[must_use]
    pub fn has_changed(&self) -> bool {
        let mut state = self.lock();
        match state.current_record(false, false) {
            Ok(None) => false,
            Ok(Some(record)) => state.differs(&record),
            Err(_) => true,
        }
    }

    /// Whether the session has not been saved yet.
    #[must_use]
    pub fn is_new(&self) -> bool {
        self.lock().meta.loaded.is_none()
    }

    /// When the session expires.
    #[must_use]
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.lock().meta.expires_ms)
    }

    /// Store mode: the session's id (before a `regenerate()` takes effect).
    /// `None` in stateless mode.
    #[must_use]
    pub fn id(&self) -> Option<SessionId> {
        self.lock().meta.id.clone()
    }

    /// Names the user the session belongs to, for per-user session
    /// management ([`SessionIndex`](crate::SessionIndex): list a user's
    /// sessions, log them out everywhere). Call it at login, after
    /// [`regenerate`](Self::regenerate). The owner is kept in the record
    /// (the reserved key `_owner`), with the time it was set and the
    /// time of the session's last write.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sealed_session::{Session, SessionMap};
    /// let session = Session::<SessionMap>::detached();
    /// session.regenerate();
    /// session.set("userId", "42");
    /// session.set_owner("42");
    /// session.set_owner_label("Firefox on Linux");
    /// assert_eq!(session.owner().as_deref(), Some("42"));
    /// ```
    pub fn set_owner(&self, owner: impl Into<String>) {
        let owner = owner.into();
        let mut state = self.lock();
        let meta = &mut state.meta;
        // The same owner again keeps its login time and label.
        if meta.owner_value().and_then(|v| v.get("id")?.as_str()) == Some(owner.as_str()) {
            return;
        }
        let now_ms = meta.clock.now_ms();
        meta.owner = OwnerChange::Set(crate::index::owner_value(owner, None, now_ms));
    }

    /// Labels the owned session for its owner's list of sessions (a user
    /// agent, a device name). Does nothing on a session without an owner.
    pub fn set_owner_label(&self, label: impl Into<String>) {
        let mut state = self.lock();
        let meta = &mut state.meta;
        let Some(mut owner) = meta.owner_value().and_then(Value::as_object).cloned() else {
            tracing::debug!("set_owner_label on a session without an owner: ignored");
            return;
        };
        let label = Value::String(label.into());
        if owner.get("label") != Some(&label) {
            owner.insert("label".to_owned(), label);
            meta.owner = OwnerChange::Set(Value::Object(owner));
        }
    }

    /// The user the session belongs to ([`set_owner`](Self::set_owner)).
    #[must_use]
    pub fn owner(&self) -> Option<String> {
        let state = self.lock();
        let owner = state.meta.owner_value()?.get("id")?.as_str()?;
        Some(owner.to_owned())
    }

    /// Takes the session from its owner: it leaves the owner's list.
    pub fn clear_owner(&self) {
        let mut state = self.lock();
        let meta = &mut state.meta;
        if meta.owner_value().is_some() {
            meta.owner = OwnerChange::Cleared;
        }
    }

    /// Works out the commit, ageing the flash as hono-session does.
    pub(crate) fn plan(&self) -> Result<Plan, serde_json::Error> {
        self.lock().plan(false)
    }
}

/// What the adapters' per-request slot keeps of a session.
#[cfg(adapters)]
pub(crate) mod erased {
    use std::sync::{Arc, Mutex};

    use super::{Handle, Plan, Session, State, lock_state};
    use crate::data::{SessionAccessors, SessionData};

    /// A session with its data type erased, as the adapters' per-request slot
    /// keeps it: the session's own shared state, so keeping it costs no
    /// allocation of its own.
    pub(crate) struct ErasedSession {
        state: Arc<dyn std::any::Any + Send + Sync>,
        plan_final: fn(&Arc<dyn std::any::Any + Send + Sync>) -> Result<Plan, serde_json::Error>,
    }

    impl ErasedSession {
        pub(crate) fn new<T: SessionData>(session: &Session<T>) -> Self {
            let state: Arc<Mutex<State<T>>> = Arc::clone(&session.handle().inner);
            Self {
                state,
                plan_final: plan_final::<T>,
            }
        }

        /// The session, if its data type is `T`.
        pub(crate) fn session<T: SessionData>(&self) -> Option<Session<T>> {
            let inner = Arc::clone(&self.state).downcast::<Mutex<State<T>>>().ok()?;
            Some(Session {
                accessors: T::Accessors::from_handle(Handle { inner }),
            })
        }

        /// [`Session::plan`] for a session nobody will look at again (the
        /// adapters' commit, once the handler is done). When no other handle
        /// is left, the data moves into the record to write instead of being
        /// copied, and the session keeps default data.
        pub(crate) fn plan_final(&self) -> Result<Plan, serde_json::Error> {
            (self.plan_final)(&self.state)
        }
    }

    fn plan_final<T: SessionData>(
        state: &Arc<dyn std::any::Any + Send + Sync>,
    ) -> Result<Plan, serde_json::Error> {
        // With one reference left, the slot's, no handler holds the session
        // any more, and none can clone it while we hold it.
        let last = Arc::strong_count(state) == 1;
        match (**state).downcast_ref::<Mutex<State<T>>>() {
            Some(state) => {
                let mut state = lock_state(state);
                let plan = state.plan(last);
                if last {
                    // Nothing looks at the session again. Let go of the
                    // loaded record, which the memory store may then hold
                    // alone and change in place.
                    state.meta.loaded = None;
                }
                plan
            }
            // `ErasedSession::new` pairs the state with this very function.
            None => Ok(Plan::Unchanged),
        }
    }
}

impl<T: SessionData> State<T> {
    /// See [`Session::plan`]; `take`: move the data out rather than copy it.
    fn plan(&mut self, take: bool) -> Result<Plan, serde_json::Error> {
        if self.meta.destroyed {
            let meta = &self.meta;
            return Ok(Plan::Destroy {
                id: meta.loaded.as_ref().and(meta.id.clone()),
                chunks: meta.chunks_seen,
                overflow_id: meta.overflow_id.clone(),
            });
        }
        let record = match self.current_record(true, take)? {
            Some(record) => record,
            None if self.meta.force_write || self.meta.reseal => self.unchanged_record(take)?,
            None => return Ok(Plan::Unchanged),
        };
        let state = &*self;
        let meta = &state.meta;
        if !(meta.force_write || meta.reseal || state.differs(&record)) {
            return Ok(Plan::Unchanged);
        }
        let mut record = record;
        if let Some(owner) = meta.owner_value() {
            stamp_seen(&mut record, owner, meta.clock.now_ms());
        }
        let regenerated = meta
            .regenerate
            .then(|| meta.loaded.as_ref().and(meta.id.clone()));
        let id = match (&meta.id, meta.regenerate) {
            (Some(_), true) => Some(SessionId::generate()),
            (id, _) => id.clone(),
        };
        Ok(Plan::Write {
            record,
            id,
            regenerated,
            expires_ms: meta.expires_ms,
            chunks: meta.chunks_seen,
            overflow_id: meta.overflow_id.clone(),
            expected_version: if meta.regenerate {
                None
            } else {
                meta.loaded_version
            },
        })
    }

    /// The record as it would be written now, or `None` when it provably
    /// equals the loaded one (the read-only fast path: no serialisation).
    fn current_record(
        &mut self,
        age_flash: bool,
        take: bool,
    ) -> Result<Option<NewRecord>, serde_json::Error> {
        let meta = &self.meta;
        let data_untouched = meta.changed_fields == 0
            && (!meta.dirty
                || meta
                    .loaded
                    .as_ref()
                    .is_some_and(|loaded| self.data.is_unchanged_from(loaded)));
        let untouched = data_untouched
            && meta.owner == OwnerChange::Kept
            && meta.expires_ms == meta.initial_expires_ms
            && meta.flash_keys.is_empty()
            && meta.initial_flash_keys.is_empty()
            && (meta.old_flash_keys.is_empty() || !age_flash);
        if untouched {
            return Ok(None);
        }
        let mut record = self.data_record(take)?;
        self.finish(&mut record, age_flash);
        Ok(Some(record))
    }

    /// Ages the flash (`age_flash`: drops the fields flashed in the
    /// previous request), drops empty values and sets the reserved keys.
    fn finish(&self, record: &mut NewRecord, age_flash: bool) {
        let old_flash_keys = if age_flash {
            self.meta.old_flash_keys.as_slice()
        } else {
            &[]
        };
        match record {
            NewRecord::Whole(shared) => {
                // `data_record`'s record is this function's alone: no copy.
                let record = Arc::make_mut(shared);
                for key in old_flash_keys {
                    record.remove(key);
                }
                let mut wanted = self.wanted_reserved();
                if self.meta.owner == OwnerChange::Kept {
                    wanted[OWNER_INDEX] = self.meta.owner_value().cloned();
                }
                set_reserved(record, &mut wanted);
            }
            NewRecord::Changed { base, changes } => {
                for key in old_flash_keys {
                    changes.set(key, None);
                }
                // The loaded owner stays as `base` holds it: not copied to
                // be compared with itself on every write.
                let keep_owner = self.meta.owner == OwnerChange::Kept;
                change_reserved(base, changes, self.wanted_reserved(), keep_owner);
            }
        }
    }

    /// The data as record fields. When only setters changed it, the loaded
    /// record with the changed fields replaced: the other fields are not
    /// serialised again.
    fn data_record(&mut self, take: bool) -> Result<NewRecord, serde_json::Error> {
        let meta = &self.meta;
        let only_setters = !meta.dirty && meta.changed_fields != 0;
        let Some(loaded) = meta.loaded.as_ref().filter(|_| only_setters) else {
            if !take {
                return self.data.to_record().map(whole);
            }
            // A map written in this request hands over its record whole, or
            // the loaded record with its changes; `finish` then makes its
            // reserved keys and empty values what `into_record` would have
            // made them.
            let data: &mut dyn std::any::Any = &mut self.data;
            if let Some(map) = data.downcast_mut::<SessionMap>() {
                return match std::mem::take(map).into_written() {
                    Written::Record(record) => Ok(NewRecord::Whole(record)),
                    // Changes to the loaded record: the store can make them
                    // in the record it holds.
                    Written::Changed(base, changes)
                        if meta.loaded.as_ref().is_some_and(|l| Arc::ptr_eq(l, &base)) =>
                    {
                        Ok(NewRecord::Changed { base, changes })
                    }
                    Written::Changed(base, changes) => {
                        Ok(NewRecord::Whole(changes.applied_to(base)))
                    }
                    // Shared with the loaded record: copy the fields.
                    Written::Unwritten(map) => map.into_record().map(whole),
                };
            }
            return std::mem::take(&mut self.data).into_record().map(whole);
        };
        let keys = T::TRACKED_KEYS;
        let mut record: Record = loaded
            .iter()
            .filter(|(k, v)| keys.contains(&k.as_str()) && !crate::record::is_empty_value(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (index, key) in keys.iter().enumerate() {
            let changed = u32::try_from(index)
                .ok()
                .and_then(|i| 1u128.checked_shl(i))
                .is_some_and(|bit| meta.changed_fields & bit != 0);
            if changed {
                let value = self.data.tracked_value(index)?;
                if crate::record::is_empty_value(&value) {
                    record.remove(*key);
                } else {
                    record.insert((*key).to_owned(), value);
                }
            }
        }
        Ok(whole(record))
    }

    fn unchanged_record(&mut self, take: bool) -> Result<NewRecord, serde_json::Error> {
        let mut record = self.data_record(take)?;
        self.finish(&mut record, false);
        Ok(record)
    }

    /// Each reserved key's value from the session's state, in
    /// `RESERVED_KEYS` order (`None`: not written).
    fn wanted_reserved(&self) -> [Option<Value>; 6] {
        let meta = &self.meta;
        let flash_keys =
            (!meta.flash_keys.is_empty()).then(|| Value::from(meta.flash_keys.clone()));
        // Only the stateless engine writes the overflow pointer, into the
        // cookie's own record: never a session's.
        [
            Some(Value::from(meta.expires_ms)),
            meta.created_ms.map(Value::from),
            meta.loaded_version.map(Value::from),
            flash_keys,
            None,
            // Set or cleared here; a kept owner is `finish`'s to keep.
            match &meta.owner {
                OwnerChange::Set(owner) => Some(owner.clone()),
                OwnerChange::Kept | OwnerChange::Cleared => None,
            },
        ]
    }

    fn differs(&self, record: &NewRecord) -> bool {
        match (record, &self.meta.loaded) {
            (NewRecord::Whole(record), Some(loaded)) => !same_record(loaded, record),
            (NewRecord::Whole(record), None) => {
                // A new session "was" {_expires: initial, _created?}.
                record.keys().any(|k| k != EXPIRES_KEY && k != CREATED_KEY)
                    || record.get(EXPIRES_KEY) != Some(&Value::from(self.meta.initial_expires_ms))
            }
            // `data_record` keeps changes only to the loaded record.
            (NewRecord::Changed { base, changes }, _) => changes.alter(base),
        }
    }
}

/// Moves the `seen` time of the record's owner (`owner`, what the record
/// holds under `_owner`) to `now_ms`: the write is the session's last
/// sighting, at no cost to requests that do not write.
fn stamp_seen(record: &mut NewRecord, owner: &Value, now_ms: u64) {
    let Some(seen) = crate::index::seen_at(owner, now_ms) else {
        return;
    };
    match record {
        NewRecord::Whole(shared) => {
            Arc::make_mut(shared).insert(OWNER_KEY.to_owned(), seen);
        }
        NewRecord::Changed { changes, .. } => changes.set(OWNER_KEY, Some(seen)),
    }
}

/// A record to write whole.
fn whole(record: Record) -> NewRecord {
    NewRecord::Whole(Arc::new(record))
}

/// [`set_reserved`] as changes to `base`: each reserved key that should
/// change, and each empty value of `base`, becomes a change. One pass over
/// `base`, as `set_reserved`; only reserved keys it lacks are added after.
///
/// `keep_owner`: `base`'s owner stays, whatever `wanted` says of it.
fn change_reserved(
    base: &Record,
    changes: &mut Changes,
    mut wanted: [Option<Value>; 6],
    keep_owner: bool,
) {
    // Flash ageing may have removed a reserved key a foreign record listed
    // in `_flashKeys`: what is wanted here decides, as in `set_reserved`.
    for key in RESERVED_KEYS {
        changes.take(key);
    }
    for (key, value) in base {
        match crate::record::reserved_index(key) {
            Some(OWNER_INDEX) if keep_owner => {}
            // A map holds each key once, so nothing was taken from here yet.
            Some(index) => match wanted[index].take() {
                Some(new) if new == *value => {}
                new => changes.set(key, new),
            },
            None => {
                if is_empty_value(value) && changes.get(key).is_none() {
                    changes.set(key, None);
                }
            }
        }
    }
    for (key, value) in RESERVED_KEYS.into_iter().zip(wanted) {
        if value.is_some() {
            changes.set(key, value);
        }
    }
}

/// Drops `record`'s empty values and gives each reserved key its wanted
/// value (`wanted[i]` for `RESERVED_KEYS[i]`), or removes it for `None`.
///
/// One pass over the record overwrites the reserved keys it holds in place
/// (keeping their keys' allocations) and notices empty values; only keys
/// to add, and keys to remove that are there, cost a lookup afterwards.
fn set_reserved(record: &mut Record, wanted: &mut [Option<Value>; 6]) {
    let mut to_remove = [false; 6];
    let mut has_empty = false;
    for (key, value) in record.iter_mut() {
        match crate::record::reserved_index(key) {
            // A map holds each key once, so nothing was taken from here yet.
            Some(index) => match wanted[index].take() {
                Some(new) => *value = new,
                None => to_remove[index] = true,
            },
            None => has_empty |= crate::record::is_empty_value(value),
        }
    }
    if has_empty {
        record.retain(|_, v| !crate::record::is_empty_value(v));
    }
    for ((key, value), remove) in RESERVED_KEYS.into_iter().zip(wanted).zip(to_remove) {
        if let Some(value) = value.take() {
            record.insert(key.to_owned(), value);
        } else if remove {
            record.remove(key);
        }
    }
}

/// The accessors of an untyped [`Session<SessionMap>`](Session): `get`,
/// `set`, `remove` and `flash` by key.
impl Handle<SessionMap> {
    /// The value at `key`, deserialised as `V`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sealed_session::{Session, SessionMap};
    /// let session = Session::<SessionMap>::detached();
    /// session.set("count", 3);
    /// assert_eq!(session.get::<u32>("count"), Some(3));
    /// assert_eq!(session.get::<String>("count"), None); // wrong type
    /// ```
    #[must_use]
    pub fn get<V: DeserializeOwned>(&self, key: &str) -> Option<V> {
        self.read(|map| map.get(key))
    }

    /// Sets `key` to `value` (`null`, `[]` and `{}` remove it).
    pub fn set<V: Serialize>(&self, key: &str, value: V) {
        self.update(|map| map.insert(key, value));
    }

    /// Removes `key`, returning its value.
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.update(|map| map.remove(key))
    }

    /// Sets `key` for this request and the next only (a flash message).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sealed_session::{Session, SessionMap};
    /// let session = Session::<SessionMap>::detached();
    /// session.flash("message", "Saved");
    /// assert_eq!(session.get::<String>("message").as_deref(), Some("Saved"));
    /// ```
    pub fn flash<V: Serialize>(&self, key: &str, value: V) {
        self.flash_with(key, |map| map.insert(key, value));
    }
}

impl<T: SessionData + fmt::Debug> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Session")
            .field("id", &state.meta.id)
            .field("is_new", &state.meta.loaded.is_none())
            .field("expires_ms", &state.meta.expires_ms)
            .field("data", &state.data)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::record::{FLASH_KEYS_KEY, STORE_ID_KEY, VERSION_KEY};

    #[test]
    fn fields_past_the_bitset_fall_back_to_comparing_records() {
        let mut meta = Meta::new_session(Arc::new(ManualClock::new(0)), 1_000, None);
        meta.mark_changed(0);
        meta.mark_changed(127);
        assert_eq!(meta.changed_fields, 1 | (1 << 127));
        assert!(!meta.dirty);
        meta.mark_changed(128);
        assert!(meta.dirty);
    }

    /// A map written in the request hands its own record to the commit,
    /// reserved keys and empty values still in it; one only read shares
    /// the loaded record. Either way the plan must be the record built from
    /// the map's fields alone.
    #[test]
    fn a_map_commits_the_record_its_fields_would_make() {
        let loaded = serde_json::json!({
            "a": 1, "gone": null, "message": "hi",
            "_expires": 5_000, "_created": 1, "_version": 3,
            "_flashKeys": ["message"], "_storeId": "elsewhere",
        });
        let loaded = Arc::new(loaded.as_object().cloned().unwrap());
        let plan_with = |write: bool, take: bool, created: Option<u64>, version: Option<u64>| {
            let mut meta = Meta::new_session(Arc::new(ManualClock::new(0)), 1_000, None);
            meta.expires_ms = 9_000;
            meta.created_ms = created;
            meta.loaded_version = version;
            meta.old_flash_keys = vec!["message".to_owned()];
            meta.loaded = Some(Arc::clone(&loaded));
            meta.force_write = !write;
            let mut data = SessionMap::from_record(&loaded).unwrap();
            if write {
                meta.dirty = true;
                data.insert("b", 2);
            }
            let mut state = State { data, meta };
            match state.plan(take).unwrap() {
                Plan::Write { record, .. } => {
                    Value::Object(Arc::unwrap_or_clone(record.into_whole()))
                }
                other => panic!("expected a write, got {other:?}"),
            }
        };
        let plan = |take, created, version| plan_with(true, take, created, version);
        assert_eq!(
            plan(true, None, None),
            serde_json::json!({"a": 1, "b": 2, "_expires": 9_000})
        );
        // Not written (a renew, say): the map still shares the loaded
        // record, and its fields are copied, never lost.
        for take in [true, false] {
            assert_eq!(
                plan_with(false, take, None, None),
                serde_json::json!({"a": 1, "_expires": 9_000})
            );
        }
        assert_eq!(plan(true, None, None), plan(false, None, None));
        assert_eq!(
            plan(true, Some(7), Some(4)),
            serde_json::json!({"a": 1, "b": 2, "_expires": 9_000, "_created": 7, "_version": 4})
        );
        assert_eq!(plan(true, Some(7), Some(4)), plan(false, Some(7), Some(4)));
    }

    proptest::proptest! {
        /// The one-pass `set_reserved` does what dropping empty values,
        /// then setting or removing each reserved key by lookup, does.
        #[test]
        fn reserved_keys_are_set_as_by_lookups(
            fields in proptest::collection::btree_map(
                proptest::sample::select(vec![
                    "a", "Z", "_other", EXPIRES_KEY, CREATED_KEY, VERSION_KEY,
                    FLASH_KEYS_KEY, STORE_ID_KEY, crate::record::OWNER_KEY,
                ]),
                proptest::sample::select(vec![
                    Value::Null, serde_json::json!([]), serde_json::json!({}),
                    serde_json::json!(1), serde_json::json!("x"), serde_json::json!(["m"]),
                ]),
                0..8,
            ),
            values in proptest::collection::vec(
                proptest::option::of(proptest::sample::select(vec![
                    serde_json::json!(7), serde_json::json!(["m"]),
                ])),
                6,
            ),
        ) {
            let record: Record = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let mut wanted: [Option<Value>; 6] = std::array::from_fn(|i| values[i].clone());

            let mut expected = record.clone();
            expected.retain(|_, v| !crate::record::is_empty_value(v));
            for (key, value) in RESERVED_KEYS.into_iter().zip(wanted.clone()) {
                match value {
                    Some(value) => expected.insert(key.to_owned(), value),
                    None => expected.remove(key),
                };
            }
            let mut ours = record;
            set_reserved(&mut ours, &mut wanted);
            proptest::prop_assert_eq!(ours, expected);
        }
    }

    /// A plan as the record it writes (`None`: unchanged).
    fn written(plan: Plan) -> Option<Value> {
        match plan {
            Plan::Write { record, .. } => {
                Some(Value::Object(Arc::unwrap_or_clone(record.into_whole())))
            }
            Plan::Unchanged => None,
            Plan::Destroy { .. } => panic!("nothing here destroys"),
        }
    }

    proptest::proptest! {
        /// A loaded map written in the request commits its changes to the
        /// loaded record (`take`) rather than a copy; whatever the fields,
        /// flash and reserved keys, that plans the write (or no write) the
        /// map's fields make, as the copying path plans it.
        #[test]
        fn a_map_commits_changes_as_it_commits_copies(
            loaded in proptest::collection::btree_map(
                proptest::sample::select(vec![
                    "a", "b", "m", "z", EXPIRES_KEY, CREATED_KEY, VERSION_KEY, FLASH_KEYS_KEY,
                ]),
                proptest::sample::select(vec![
                    Value::Null, serde_json::json!([]), serde_json::json!(1),
                    serde_json::json!("x"), serde_json::json!(9_000), serde_json::json!(["m"]),
                ]),
                0..8,
            ),
            ops in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["a", "b", "m", "z", "_expires"]),
                    proptest::option::of(proptest::sample::select(vec![
                        Value::Null, serde_json::json!(1), serde_json::json!(2),
                        serde_json::json!("x"),
                    ])),
                ),
                0..6,
            ),
            clear_at in proptest::option::of(0usize..6),
            expires in proptest::sample::select(vec![5_000u64, 9_000]),
            created in proptest::option::of(proptest::sample::select(vec![1u64, 7])),
            version in proptest::option::of(proptest::sample::select(vec![1u64, 4])),
            age in proptest::option::of(proptest::sample::select(vec!["m", EXPIRES_KEY, CREATED_KEY])),
            flash in proptest::bool::ANY,
        ) {
            let loaded: Record = loaded.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let loaded = Arc::new(loaded);
            let state = || {
                let mut meta = Meta::new_session(Arc::new(ManualClock::new(0)), 1_000, None);
                meta.loaded = Some(Arc::clone(&loaded));
                meta.initial_expires_ms = 9_000;
                meta.expires_ms = expires;
                meta.created_ms = created;
                meta.loaded_version = version;
                if let Some(key) = age {
                    meta.old_flash_keys = vec![key.to_owned()];
                }
                meta.dirty = true;
                let mut data = SessionMap::from_record(&loaded).unwrap();
                for (i, (key, value)) in ops.iter().enumerate() {
                    if clear_at == Some(i) {
                        data.clear();
                    }
                    match value {
                        Some(value) => data.insert_value(key, value.clone()),
                        None => data.remove(key).is_some(),
                    };
                }
                if flash {
                    meta.flash("b");
                }
                State { data, meta }
            };
            let changes = written(state().plan(true).unwrap());
            let copies = written(state().plan(false).unwrap());
            proptest::prop_assert_eq!(changes, copies);
        }

        /// A map that shares its record keeps writes as changes beside it;
        /// one that owns its record writes in place. Both answer every
        /// call alike and end as the same fields.
        #[test]
        fn a_shared_map_behaves_as_an_owned_one(
            loaded in proptest::collection::btree_map(
                proptest::sample::select(vec!["a", "b", "c", "_expires"]),
                proptest::sample::select(vec![
                    Value::Null, serde_json::json!(1), serde_json::json!("x"),
                ]),
                0..4,
            ),
            ops in proptest::collection::vec(
                (
                    0u8..4,
                    proptest::sample::select(vec!["a", "b", "c", "d", "_expires"]),
                    proptest::sample::select(vec![
                        Value::Null, serde_json::json!(1), serde_json::json!(2),
                        serde_json::json!([]),
                    ]),
                ),
                0..10,
            ),
        ) {
            let loaded: Record = loaded.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let before = loaded.clone();
            let loaded = Arc::new(loaded);
            let mut shared = SessionMap::from_record(&loaded).unwrap();
            let mut owned = SessionMap::from_record(&Arc::new((*loaded).clone())).unwrap();
            for (op, key, value) in ops {
                match op {
                    0 => proptest::prop_assert_eq!(
                        shared.insert_value(key, value.clone()),
                        owned.insert_value(key, value)
                    ),
                    1 => proptest::prop_assert_eq!(shared.remove(key), owned.remove(key)),
                    2 => {
                        shared.clear();
                        owned.clear();
                    }
                    _ => proptest::prop_assert_eq!(shared.get_value(key), owned.get_value(key)),
                }
                proptest::prop_assert_eq!(shared.iter().collect::<Vec<_>>(), owned.iter().collect::<Vec<_>>());
                proptest::prop_assert_eq!(shared.len(), owned.len());
            }
            proptest::prop_assert_eq!(&shared, &owned);
            proptest::prop_assert_eq!(shared.to_record().unwrap(), owned.to_record().unwrap());
            proptest::prop_assert_eq!(shared.into_record().unwrap(), owned.into_record().unwrap());
            // The loaded record itself is never changed.
            proptest::prop_assert_eq!(&*loaded, &before);
        }
    }

    #[test]
    fn flashing_a_key_twice_lists_it_once_and_keeps_it_from_ageing() {
        let mut meta = Meta::new_session(Arc::new(ManualClock::new(0)), 1_000, None);
        meta.old_flash_keys = vec!["message".to_owned()];
        meta.flash("message");
        meta.flash("message");
        assert_eq!(meta.flash_keys, ["message"]);
        assert!(meta.old_flash_keys.is_empty());
    }
}
