//! Cookie syntax: options, reading the session cookie from a request, and
//! rendering `Set-Cookie` values.

use std::borrow::Cow;
use std::time::Duration;

use cookie::Cookie;
pub use cookie::SameSite;
use http::{HeaderMap, HeaderValue, header};

use crate::error::BuildError;

/// Browsers cap `Max-Age` at 400 days; hono refuses more.
const MAX_COOKIE_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

/// The longest cookie value the engine will try to open. Browsers keep
/// at most about 4 KiB per cookie; anything much larger is not ours.
pub(crate) const MAX_COOKIE_VALUE_LEN: usize = 16 * 1024;

/// Attributes of the session cookie (and of the exists cookie).
///
/// Unset attributes take the engine's defaults: `Secure`, `HttpOnly`,
/// `Path=/`, `SameSite=Lax`, `Max-Age` = the session's max age. The exists
/// cookie takes the session cookie's attributes, then its own, and is never
/// `HttpOnly` (scripts read it to know a session exists).
///
/// # Examples
///
/// ```
/// use sealed_session::{CookieOptions, SameSite};
///
/// // Local development over plain HTTP.
/// let options = CookieOptions::new().with_secure(false).with_same_site(SameSite::Strict);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieOptions {
    secure: Option<bool>,
    http_only: Option<bool>,
    same_site: Option<Option<SameSite>>,
    path: Option<String>,
    domain: Option<String>,
    max_age: Option<Duration>,
    partitioned: Option<bool>,
}

impl CookieOptions {
    /// No attribute set: all take their defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `Secure` (default `true`): the browser sends the cookie over HTTPS only.
    ///
    /// # Warning
    ///
    /// Turn it off for local development over plain HTTP only; without it a
    /// session cookie crosses the network in the clear.
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = Some(secure);
        self
    }

    /// `HttpOnly` (default `true` for the session cookie): scripts cannot read
    /// the cookie.
    ///
    /// # Warning
    ///
    /// Without it, any script injected into a page can steal the session.
    #[must_use]
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = Some(http_only);
        self
    }

    /// `SameSite` (default `Lax`, our addition to hono-session's defaults):
    /// limits cross-site sending, the first line of defence against CSRF.
    ///
    /// # Warning
    ///
    /// `SameSite::None` sends the cookie on every cross-site request and
    /// requires `Secure`; protect state-changing routes against CSRF yourself.
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = Some(Some(same_site));
        self
    }

    /// Writes no `SameSite` attribute (the browser's default applies), as
    /// hono-session does.
    #[must_use]
    pub fn without_same_site(mut self) -> Self {
        self.same_site = Some(None);
        self
    }

    /// `Path` (default `/`).
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// `Domain` (default none: the cookie goes to the exact host only).
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// `Max-Age` (default: the session's max age).
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// `Partitioned` (default `false`, CHIPS): requires `Secure`.
    #[must_use]
    pub fn with_partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = Some(partitioned);
        self
    }

    /// `self`, with every attribute that `over` sets taken from `over`.
    fn merged(&self, over: &Self) -> Self {
        Self {
            secure: over.secure.or(self.secure),
            http_only: over.http_only.or(self.http_only),
            same_site: over.same_site.or(self.same_site),
            path: over.path.clone().or_else(|| self.path.clone()),
            domain: over.domain.clone().or_else(|| self.domain.clone()),
            max_age: over.max_age.or(self.max_age),
            partitioned: over.partitioned.or(self.partitioned),
        }
    }

    /// Renders `; Attr; Attr=value…` for a cookie, with `max_age`.
    fn render_attributes(&self, name: &str, max_age: Duration) -> Result<String, BuildError> {
        if max_age > MAX_COOKIE_AGE {
            return Err(BuildError::MaxAgeTooLong { max_age });
        }
        let secure = self.secure.unwrap_or(true);
        let path = self.path.as_deref().unwrap_or("/");
        if name.starts_with("__Secure-") && !secure {
            return Err(BuildError::CookiePrefix {
                name: name.to_owned(),
                rule: "a `__Secure-` cookie must be Secure",
            });
        }
        if name.starts_with("__Host-") && (!secure || path != "/" || self.domain.is_some()) {
            return Err(BuildError::CookiePrefix {
                name: name.to_owned(),
                rule: "a `__Host-` cookie must be Secure, have Path=/ and no Domain",
            });
        }
        let partitioned = self.partitioned.unwrap_or(false);
        if partitioned && !secure {
            return Err(BuildError::CookiePrefix {
                name: name.to_owned(),
                rule: "a Partitioned cookie must be Secure",
            });
        }
        let same_site = self.same_site.unwrap_or(Some(SameSite::Lax));
        if same_site == Some(SameSite::None) && !secure {
            return Err(BuildError::CookiePrefix {
                name: name.to_owned(),
                rule: "a SameSite=None cookie must be Secure",
            });
        }
        let mut cookie = Cookie::new(name.to_owned(), "");
        cookie.set_path(path.to_owned());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie.set_secure(secure);
        cookie.set_http_only(self.http_only.unwrap_or(true));
        cookie.set_same_site(same_site);
        cookie.set_partitioned(partitioned);
        let secs = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        cookie.set_max_age(cookie::time::Duration::seconds(secs));
        let rendered = cookie.to_string();
        // `name=` then the attributes: keep only the attributes.
        Ok(rendered
            .get(name.len() + 1..)
            .unwrap_or_default()
            .to_owned())
    }
}

/// What to do when a sealed session no longer fits in one cookie (stateless
/// mode; browsers drop cookies over 4096 bytes without a word).
///
/// # Examples
///
/// ```
/// use sealed_session::{CookieSizePolicy, SessionEngine};
///
/// let engine = SessionEngine::builder()
///     .with_cookie_size_policy(CookieSizePolicy::Chunk { max_chunks: 4 })
///     .build()?;
/// # let _ = engine;
/// # Ok::<(), sealed_session::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CookieSizePolicy {
    /// Fail the commit with [`Error::CookieTooLarge`](crate::Error::CookieTooLarge)
    /// (the adapters answer 500 and log it) rather than send a cookie the
    /// browser would silently drop. The default.
    #[default]
    Error,
    /// Split the value across `sid.0`, `sid.1`, … (at most `max_chunks`
    /// cookies, each within the limit) and join them on read. Stale chunks
    /// are expired when the session shrinks.
    Chunk {
        /// The most cookies one session may take (1 to 16).
        max_chunks: u8,
    },
}

/// The largest `Set-Cookie` (name, value and attributes) browsers keep.
pub const MAX_COOKIE_SIZE: usize = 4096;

/// Upper bound on chunks, whatever the policy says.
const CHUNK_LIMIT: u8 = 16;

/// The cookie names and pre-rendered attribute strings of an engine: the
/// per-request work is a concatenation.
#[derive(Debug)]
pub(crate) struct CookieLayer {
    pub(crate) name: String,
    /// `; Max-Age=…; Path=/; …` for the session cookie.
    set_attributes: String,
    /// The same, with `Max-Age=0`.
    delete_attributes: String,
    /// The complete `sx=1; …` value.
    exists_set: HeaderValue,
    session_delete: HeaderValue,
    exists_delete: HeaderValue,
    policy: CookieSizePolicy,
}

/// The session cookie as found in a request.
#[derive(Debug, Default)]
pub(crate) struct Found<'a> {
    /// `sid`, or the chunks joined.
    pub(crate) value: Option<Cow<'a, str>>,
    /// How many `sid.N` chunk cookies the request carried (to expire them).
    pub(crate) chunks: u8,
}

/// Why a cookie could not be written.
#[derive(Debug)]
pub(crate) enum CookieError {
    /// Over [`MAX_COOKIE_SIZE`], and the policy does not allow it.
    TooLarge { size: usize, limit: usize },
    /// Characters a header cannot carry.
    InvalidValue,
}

impl CookieLayer {
    pub(crate) fn new(
        name: &str,
        exists_name: &str,
        options: &CookieOptions,
        exists_options: &CookieOptions,
        max_age: Duration,
        policy: CookieSizePolicy,
    ) -> Result<Self, BuildError> {
        for n in [name, exists_name] {
            if !is_valid_name(n) {
                return Err(BuildError::InvalidCookieName { name: n.to_owned() });
            }
        }
        if name == exists_name {
            return Err(BuildError::InvalidCookieName {
                name: exists_name.to_owned(),
            });
        }
        if let CookieSizePolicy::Chunk { max_chunks } = policy
            && !(1..=CHUNK_LIMIT).contains(&max_chunks)
        {
            return Err(BuildError::InvalidChunkCount { max_chunks });
        }
        let exists = options.merged(exists_options).with_http_only(false);
        let age = options.max_age.unwrap_or(max_age);
        let exists_age = exists.max_age.unwrap_or(max_age);
        let set_attributes = options.render_attributes(name, age)?;
        let exists_attributes = exists.render_attributes(exists_name, exists_age)?;
        let delete_attributes = options.render_attributes(name, Duration::ZERO)?;
        let exists_delete = exists.render_attributes(exists_name, Duration::ZERO)?;
        let value =
            |s: String| HeaderValue::try_from(s).map_err(|_| BuildError::InvalidCookieAttribute);
        Ok(Self {
            name: name.to_owned(),
            exists_set: value(format!("{exists_name}=1{exists_attributes}"))?,
            session_delete: value(format!("{name}={delete_attributes}"))?,
            exists_delete: value(format!("{exists_name}={exists_delete}"))?,
            set_attributes,
            delete_attributes,
            policy,
        })
    }

    fn max_chunks(&self) -> u8 {
        match self.policy {
            CookieSizePolicy::Chunk { max_chunks } => max_chunks,
            CookieSizePolicy::Error => 0,
        }
    }

    /// The session cookie in the request's `Cookie` headers: the first
    /// `name=` pair, percent-decoded as hono does, or else the chunks.
    pub(crate) fn find<'a>(&self, headers: &'a HeaderMap) -> Found<'a> {
        // A header that is not visible ASCII (`HeaderValue::to_str`'s rule)
        // is skipped. Counted under callgrind, `to_str`'s early-exit loop
        // and a vectorised search for `%` and `"` cost less than one
        // branch-free pass doing both, which the compiler does not
        // vectorise, plus the UTF-8 check it would then need.
        self.find_all(
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
    }

    /// Like [`find`](Self::find), in the text of each `Cookie` header (for
    /// frameworks on another `http` version).
    pub(crate) fn find_all<'a>(&self, headers: impl IntoIterator<Item = &'a str>) -> Found<'a> {
        let mut found = Scan::new(self.max_chunks());
        for text in headers {
            self.scan(text, may_need_decoding(text), &mut found);
        }
        found.finish()
    }

    /// Like [`find`](Self::find), in one `Cookie` header's text.
    pub(crate) fn find_in<'a>(&self, header: &'a str) -> Found<'a> {
        let mut found = Scan::new(self.max_chunks());
        self.scan(header, may_need_decoding(header), &mut found);
        found.finish()
    }

    /// `special`: the header has a `%` or a `"` somewhere, so pairs may
    /// need decoding.
    fn scan<'a>(&self, header: &'a str, special: bool, found: &mut Scan<'a>) {
        // The `cookie` crate's `split_parse_encoded`, without building a
        // `Cookie` per pair: split on `;`, skip blank pieces and pieces
        // without `=` or with an empty name, trim name and value. Pairs
        // with something to percent-decode (or quotes) go through the
        // crate, so decoding is exactly its own.
        let mut rest = header;
        while !rest.is_empty() {
            // `;` and `=` are ASCII: every cut is on a character boundary.
            let (piece, tail) = match memchr::memchr(b';', rest.as_bytes()) {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, ""),
            };
            rest = tail;
            let piece = trim(piece);
            // Without decoding, only a piece that starts with the cookie's
            // name can be it (or one of its chunks).
            if !special && !piece.starts_with(self.name.as_str()) {
                continue;
            }
            let Some(eq) = memchr::memchr(b'=', piece.as_bytes()) else {
                continue;
            };
            let (name, value) = (trim(&piece[..eq]), trim(&piece[eq + 1..]));
            if name.is_empty() {
                continue;
            }
            if special && piece.bytes().any(|b| b == b'%' || b == b'"') {
                if let Ok(cookie) = Cookie::parse_encoded(piece) {
                    let value = Cow::Owned(cookie.value().to_owned());
                    self.keep(cookie.name(), value, found);
                }
                continue;
            }
            // Nothing to decode: borrow the header's text.
            self.keep(name, Cow::Borrowed(value), found);
        }
    }

    /// Keeps `value` if `name` is the session cookie or one of its chunks,
    /// and the first of its name.
    fn keep<'a>(&self, name: &str, value: Cow<'a, str>, found: &mut Scan<'a>) {
        let Some(rest) = name.strip_prefix(self.name.as_str()) else {
            return;
        };
        let slot = if rest.is_empty() {
            &mut found.whole
        } else {
            match rest
                .strip_prefix('.')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| found.chunks.get_mut(n))
            {
                Some(slot) => slot,
                None => return,
            }
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    /// Whether `value` fits in one session cookie.
    pub(crate) fn fits(&self, value: &str) -> bool {
        self.name.len() + 1 + value.len() + self.set_attributes.len() <= MAX_COOKIE_SIZE
    }

    /// The `Set-Cookie` values that write `value`, then the exists cookie;
    /// chunked if the policy allows and the value needs it, and expiring the
    /// `chunks_seen` chunks the request had that are no longer used.
    pub(crate) fn set(
        &self,
        value: &str,
        chunks_seen: u8,
        out: &mut Vec<HeaderValue>,
    ) -> Result<(), CookieError> {
        let size = self.name.len() + 1 + value.len() + self.set_attributes.len();
        let mut used = 0;
        if size <= MAX_COOKIE_SIZE {
            out.push(self.render(&self.name, value, &self.set_attributes)?);
        } else {
            let max_chunks = usize::from(self.max_chunks());
            // `sid.NN=` + attributes must fit beside each chunk.
            let overhead = self.name.len() + 4 + self.set_attributes.len();
            let room = MAX_COOKIE_SIZE.saturating_sub(overhead);
            let needed = if room == 0 {
                usize::MAX
            } else {
                value.len().div_ceil(room)
            };
            if max_chunks == 0 || needed > max_chunks {
                return Err(CookieError::TooLarge {
                    size,
                    limit: MAX_COOKIE_SIZE,
                });
            }
            // Tokens are ASCII (iron's are); split at char boundaries anyway.
            let mut rest = value;
            while !rest.is_empty() {
                let mut cut = room.min(rest.len());
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                let (part, tail) = rest.split_at(cut);
                out.push(self.render(
                    &format!("{}.{used}", self.name),
                    part,
                    &self.set_attributes,
                )?);
                used += 1;
                rest = tail;
            }
            out.push(self.session_delete.clone());
        }
        for stale in used..usize::from(chunks_seen) {
            out.push(self.render(
                &format!("{}.{stale}", self.name),
                "",
                &self.delete_attributes,
            )?);
        }
        out.push(self.exists_set.clone());
        Ok(())
    }

    fn render(
        &self,
        name: &str,
        value: &str,
        attributes: &str,
    ) -> Result<HeaderValue, CookieError> {
        let mut text = String::with_capacity(name.len() + 1 + value.len() + attributes.len());
        text.push_str(name);
        text.push('=');
        text.push_str(value);
        text.push_str(attributes);
        HeaderValue::try_from(text).map_err(|_| CookieError::InvalidValue)
    }

    /// The `Set-Cookie` values that expire the session cookie, its chunks
    /// and the exists cookie.
    pub(crate) fn delete(&self, chunks_seen: u8, out: &mut Vec<HeaderValue>) {
        out.push(self.session_delete.clone());
        for n in 0..chunks_seen {
            if let Ok(v) = self.render(&format!("{}.{n}", self.name), "", &self.delete_attributes) {
                out.push(v);
            }
        }
        out.push(self.exists_delete.clone());
    }
}

/// Cookies collected while scanning a request's `Cookie` headers.
struct Scan<'a> {
    whole: Option<Cow<'a, str>>,
    chunks: Vec<Option<Cow<'a, str>>>,
}

impl<'a> Scan<'a> {
    fn new(max_chunks: u8) -> Self {
        Self {
            whole: None,
            chunks: std::iter::repeat_with(|| None)
                .take(usize::from(max_chunks))
                .collect(),
        }
    }

    fn finish(self) -> Found<'a> {
        let seen = self
            .chunks
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        let chunks = u8::try_from(seen).unwrap_or(u8::MAX);
        if self.whole.is_some() {
            return Found {
                value: self.whole,
                chunks,
            };
        }
        // Join sid.0, sid.1, … up to the first gap.
        let mut joined = String::new();
        for chunk in self.chunks.iter().map_while(Option::as_ref) {
            joined.push_str(chunk);
        }
        Found {
            value: (!joined.is_empty()).then_some(Cow::Owned(joined)),
            chunks,
        }
    }
}

/// Whether a header has a `%` or a `"`, so that some pair may need
/// percent-decoding or unquoting.
fn may_need_decoding(header: &str) -> bool {
    memchr::memchr2(b'%', b'"', header.as_bytes()).is_some()
}

/// [`str::trim`], without decoding characters when the ends are ASCII
/// (always, for header text): the whitespace it strips there is `\t`,
/// `\n`, `\x0B`, `\x0C`, `\r` and space.
fn trim(text: &str) -> &str {
    let is_space = |b: &u8| matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ');
    let bytes = text.as_bytes();
    // The usual case: nothing to strip.
    let plain = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii() && !is_space(b));
    if bytes.is_empty() || (plain(bytes.first()) && plain(bytes.last())) {
        return text;
    }
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    let inner = &bytes[start..end];
    match (inner.first(), inner.last()) {
        // A non-ASCII end may be Unicode whitespace: let `str::trim` decide.
        (Some(first), Some(last)) if !first.is_ascii() || !last.is_ascii() => text.trim(),
        // Cut at ASCII bytes, so on character boundaries.
        _ => text.get(start..end).unwrap_or_default(),
    }
}

/// RFC 6265 token characters, as hono's `validCookieNameRegEx`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*.^_`|~+-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_is_str_trim() {
        for text in [
            "",
            " ",
            "a",
            " a ",
            "\t a=b \r\n",
            "\x0Ba\x0C",
            "\u{a0}a\u{a0}",
            " \u{a0}a",
            "a\u{2003} ",
            "\u{e9}t\u{e9}",
            " \u{e9} ",
            "\u{feff}a",
        ] {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn trim_is_str_trim_on_any_text(text in "[ \t\r\n\x0B\x0Ca=;%\u{a0}\u{2003}\u{e9}]{0,12}") {
            proptest::prop_assert_eq!(trim(&text), text.trim());
        }
    }

    fn layer_with(
        options: CookieOptions,
        exists: CookieOptions,
        policy: CookieSizePolicy,
    ) -> CookieLayer {
        CookieLayer::new(
            "sid",
            "sx",
            &options,
            &exists,
            Duration::from_secs(86_400),
            policy,
        )
        .unwrap()
    }

    fn layer(options: CookieOptions, exists: CookieOptions) -> CookieLayer {
        layer_with(options, exists, CookieSizePolicy::Error)
    }

    fn attrs(v: &HeaderValue) -> Vec<String> {
        let mut parts: Vec<String> = v.to_str().unwrap().split("; ").map(str::to_owned).collect();
        parts[1..].sort();
        parts
    }

    fn value_of(found: Found<'_>) -> Option<String> {
        found.value.map(Cow::into_owned)
    }

    #[test]
    fn defaults_match_hono_plus_same_site_lax() {
        let l = layer(CookieOptions::new(), CookieOptions::new());
        let mut out = Vec::new();
        l.set("TOKEN", 0, &mut out).unwrap();
        assert_eq!(
            attrs(&out[0]),
            [
                "sid=TOKEN",
                "HttpOnly",
                "Max-Age=86400",
                "Path=/",
                "SameSite=Lax",
                "Secure"
            ]
        );
        assert_eq!(
            attrs(&out[1]),
            ["sx=1", "Max-Age=86400", "Path=/", "SameSite=Lax", "Secure"]
        );
        out.clear();
        l.delete(0, &mut out);
        assert_eq!(
            attrs(&out[0]),
            [
                "sid=",
                "HttpOnly",
                "Max-Age=0",
                "Path=/",
                "SameSite=Lax",
                "Secure"
            ]
        );
        assert_eq!(
            attrs(&out[1]),
            ["sx=", "Max-Age=0", "Path=/", "SameSite=Lax", "Secure"]
        );
    }

    #[test]
    fn exists_options_merge_and_never_http_only() {
        let l = layer(
            CookieOptions::new()
                .with_domain("example.com")
                .with_http_only(true),
            CookieOptions::new().with_path("/app").with_http_only(true),
        );
        let mut out = Vec::new();
        l.set("v", 0, &mut out).unwrap();
        let exists = attrs(&out[1]);
        assert!(
            exists.contains(&"Domain=example.com".to_owned()),
            "{exists:?}"
        );
        assert!(exists.contains(&"Path=/app".to_owned()));
        assert!(!exists.contains(&"HttpOnly".to_owned()));
        assert!(attrs(&out[0]).contains(&"Path=/".to_owned()));
    }

    #[test]
    fn partitioned_and_no_same_site_render() {
        let l = layer(
            CookieOptions::new()
                .with_partitioned(true)
                .without_same_site(),
            CookieOptions::new(),
        );
        let mut out = Vec::new();
        l.set("v", 0, &mut out).unwrap();
        let a = attrs(&out[0]);
        assert!(a.contains(&"Partitioned".to_owned()), "{a:?}");
        assert!(!a.iter().any(|x| x.starts_with("SameSite")), "{a:?}");
    }

    #[test]
    fn finds_the_first_session_cookie_and_percent_decodes() {
        let l = layer(CookieOptions::new(), CookieOptions::new());
        assert_eq!(
            value_of(l.find_in("a=1; sid=x%2Ay; sid=second")).as_deref(),
            Some("x*y")
        );
        assert_eq!(value_of(l.find_in("xsid=1; sidx=2")), None);
        assert_eq!(value_of(l.find_in("")), None);
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("sid=abc"));
        assert_eq!(value_of(l.find(&headers)).as_deref(), Some("abc"));
    }

    /// The session cookie as the `cookie` crate reads the header: the first
    /// pair it parses whose (decoded) name is `sid`.
    fn by_the_cookie_crate(header: &str) -> Option<String> {
        Cookie::split_parse_encoded(header)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == "sid")
            .map(|cookie| cookie.value().to_owned())
    }

    proptest::proptest! {
        #[test]
        fn finds_what_the_cookie_crate_finds(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "sid", "sid.0", "si", "sx", "a", "=", "=", ";", ";", " ", "\t",
                    "%2A", "%73", "%", "\"", "x", "\u{a0}", "\u{e9}",
                ]),
                0..14,
            )
        ) {
            let header = pieces.concat();
            let l = layer(CookieOptions::new(), CookieOptions::new());
            proptest::prop_assert_eq!(
                value_of(l.find_in(&header)),
                by_the_cookie_crate(&header),
                "header {:?}", header
            );
        }
    }

    #[test]
    fn oversized_cookie_is_an_error_by_default() {
        let l = layer(CookieOptions::new(), CookieOptions::new());
        let mut out = Vec::new();
        let big = "a".repeat(MAX_COOKIE_SIZE);
        match l.set(&big, 0, &mut out) {
            Err(CookieError::TooLarge { size, limit }) => {
                assert!(size > MAX_COOKIE_SIZE);
                assert_eq!(limit, MAX_COOKIE_SIZE);
            }
            other => panic!("{other:?}"),
        }
        // Exactly at the limit is fine.
        let fits = MAX_COOKIE_SIZE - "sid=".len() - l.set_attributes.len();
        out.clear();
        assert!(l.set(&"a".repeat(fits), 0, &mut out).is_ok());
        assert_eq!(out[0].len(), MAX_COOKIE_SIZE);
    }

    #[test]
    fn chunks_split_join_and_expire_when_the_session_shrinks() {
        let l = layer_with(
            CookieOptions::new(),
            CookieOptions::new(),
            CookieSizePolicy::Chunk { max_chunks: 4 },
        );
        let big: String = (0..10_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let mut out = Vec::new();
        l.set(&big, 0, &mut out).unwrap();
        let chunks: Vec<&HeaderValue> = out
            .iter()
            .filter(|v| v.to_str().unwrap().starts_with("sid."))
            .collect();
        assert_eq!(chunks.len(), 3);
        assert!(out.iter().all(|v| v.len() <= MAX_COOKIE_SIZE));
        assert!(
            out.iter().any(|v| v.to_str().unwrap().starts_with("sid=;")),
            "plain sid expired"
        );
        // The browser sends them back (in any order): they join.
        let header = out
            .iter()
            .rev()
            .filter_map(|v| v.to_str().unwrap().split(';').next())
            .filter(|pair| pair.starts_with("sid."))
            .collect::<Vec<_>>()
            .join("; ");
        let found = l.find_in(&header);
        assert_eq!(found.chunks, 3);
        assert_eq!(value_of(found).as_deref(), Some(big.as_str()));
        // Shrinking back to one cookie expires the three chunks.
        out.clear();
        l.set("small", 3, &mut out).unwrap();
        let expired: Vec<_> = out
            .iter()
            .map(|v| v.to_str().unwrap())
            .filter(|v| v.starts_with("sid.") && v.contains("Max-Age=0"))
            .collect();
        assert_eq!(expired.len(), 3, "{out:?}");
        // Too big even for the chunks allowed.
        out.clear();
        assert!(matches!(
            l.set(&"a".repeat(20_000), 0, &mut out),
            Err(CookieError::TooLarge { .. })
        ));
    }

    #[test]
    fn chunk_scan_is_bounded_and_stops_at_a_gap() {
        let l = layer_with(
            CookieOptions::new(),
            CookieOptions::new(),
            CookieSizePolicy::Chunk { max_chunks: 2 },
        );
        let found = l.find_in("sid.0=a; sid.1=b; sid.2=c; sid.99999999999999999999=x");
        assert_eq!(value_of(found).as_deref(), Some("ab"));
        let found = l.find_in("sid.1=b");
        assert_eq!(found.chunks, 2);
        assert_eq!(found.value, None);
    }

    #[test]
    fn build_rejects_invalid_names_prefixes_and_ages() {
        let d = Duration::from_secs(60);
        let e = CookieSizePolicy::Error;
        let plain = CookieOptions::new();
        assert!(CookieLayer::new("s id", "sx", &plain, &plain, d, e).is_err());
        assert!(CookieLayer::new("sid", "sid", &plain, &plain, d, e).is_err());
        let insecure = CookieOptions::new().with_secure(false);
        assert!(CookieLayer::new("__Host-sid", "sx", &insecure, &plain, d, e).is_err());
        assert!(CookieLayer::new("__Secure-sid", "sx", &insecure, &plain, d, e).is_err());
        let sub = plain.clone().with_path("/a");
        assert!(CookieLayer::new("__Host-sid", "sx", &sub, &plain, d, e).is_err());
        let dom = plain.clone().with_domain("example.com");
        assert!(CookieLayer::new("__Host-sid", "sx", &dom, &plain, d, e).is_err());
        assert!(CookieLayer::new("__Host-sid", "__Host-sx", &plain, &plain, d, e).is_ok());
        let none = insecure.clone().with_same_site(SameSite::None);
        assert!(CookieLayer::new("sid", "sx", &none, &plain, d, e).is_err());
        let part = insecure.with_partitioned(true);
        assert!(CookieLayer::new("sid", "sx", &part, &plain, d, e).is_err());
        let long = Duration::from_secs(401 * 86_400);
        assert!(CookieLayer::new("sid", "sx", &plain, &plain, long, e).is_err());
        let zero = CookieSizePolicy::Chunk { max_chunks: 0 };
        assert!(CookieLayer::new("sid", "sx", &plain, &plain, d, zero).is_err());
    }
}
