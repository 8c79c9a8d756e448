//! The demo page (`GET /`) and its form routes (`POST /ui/…`), shared by
//! the five demo servers (each includes this file with `#[path]`; it sits
//! in a subdirectory so Cargo does not take it for an example).
//!
//! Plain HTML forms, no JavaScript: each button posts to a `/ui/…` route,
//! which answers `303 See Other` to `/`. The `/ui/` prefix keeps the API
//! routes (`POST /login?user=ID` → 204, …) exactly as the black-box tests
//! expect them.
//!
//! Also shared: the per-user session routes (`GET /devices`, `POST
//! /logout-everywhere`), written once over [`Accounts`], the engine's
//! per-user methods without its type parameters, so that each framework's
//! handlers only extract their inputs and send the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sealed_session::{
    Encoder, Error, Session, SessionData, SessionEngine, SessionId, SessionIndex, SessionInfo,
};

/// Where every form route sends the browser back to.
pub(crate) const HOME: &str = "/";

/// How much the "big data" button stores: over the 4 KB a browser keeps in
/// one cookie, so the cookie-size policy shows (`error`: a 500; `chunk`:
/// `sid.0`, `sid.1`, …).
pub(crate) const BIG_DATA_LEN: usize = 10 * 1024;

/// What the page shows.
#[derive(Debug)]
pub(crate) struct Page {
    /// The logged-in user, if any.
    pub(crate) user: Option<String>,
    /// The visit counter (this visit included).
    pub(crate) count: u64,
    /// The flash message, shown once.
    pub(crate) flash: Option<String>,
    /// The length of the session's `data` field.
    pub(crate) data_len: usize,
    /// The logged-in user's sessions (`Err`: why they cannot be listed).
    pub(crate) devices: Result<Vec<Device>, String>,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            user: None,
            count: 0,
            flash: None,
            data_len: 0,
            devices: Ok(Vec::new()),
        }
    }
}

/// `BIG_DATA_LEN` bytes of random text: random so that no compression
/// could bring the cookie back under 4 KB.
pub(crate) fn big_data() -> String {
    std::iter::repeat_with(|| sealed_session::SessionId::generate().as_str().to_owned())
        .flat_map(String::into_bytes)
        .take(BIG_DATA_LEN)
        .map(char::from)
        .collect()
}

/// `text` with the characters HTML gives a meaning to escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page as HTML; user-supplied text (user name, flash) is escaped.
pub(crate) fn render(page: &Page) -> String {
    let flash = page.flash.as_deref().map_or_else(String::new, |m| {
        format!("<p id=\"flash\" class=\"flash\">{}</p>", escape(m))
    });
    let account = match page.user.as_deref() {
        Some(user) => format!(
            "<p>Logged in as <strong id=\"user\">{}</strong>.</p>\n\
             <form method=\"post\" action=\"/ui/logout\"><button id=\"logout\">Log out</button></form>\n\
             <form method=\"post\" action=\"/ui/logout-everywhere\">\
             <button id=\"logout-everywhere\">Log out other sessions</button></form>\n{}",
            escape(user),
            render_devices(&page.devices)
        ),
        None => "<p id=\"anonymous\">Not logged in.</p>\n\
             <form method=\"post\" action=\"/ui/login\">\
             <label>User name <input id=\"name\" name=\"user\" required></label> \
             <button id=\"login\">Log in</button></form>"
            .to_owned(),
    };
    let (count, data_len) = (page.count, page.data_len);
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>sealed-session demo</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; }}
.flash {{ background: #e6f4ea; border: 1px solid #8bc59a; padding: .5rem .75rem; border-radius: .25rem; }}
.hint {{ color: #555; font-size: .9rem; }}
form {{ display: inline-block; margin: .25rem .25rem .25rem 0; }}
button {{ padding: .3rem .8rem; }}
</style>
</head>
<body>
<h1>sealed-session demo</h1>
{flash}
{account}
<p>Visits in this session: <strong id="count">{count}</strong></p>
<p>Data stored in the session: <span id="data-len">{data_len}</span> bytes</p>
<form method="post" action="/ui/renew"><button id="renew">Renew</button></form>
<form method="post" action="/ui/regenerate"><button id="regenerate">Regenerate id</button></form>
<form method="post" action="/ui/big"><button id="big">Store 10 KB</button></form>
<form method="post" action="/ui/clear"><button id="clear">Clear data</button></form>
<p class="hint" id="big-hint">10 KB is more than the 4 KB a browser keeps in one cookie: stateless with the default
<code>SESSION_COOKIE_POLICY=error</code> answers 500 and leaves the session as it was, <code>chunk</code> splits it
over several cookies, and a <code>SESSION_STORE</code> keeps it on the server.</p>
</body>
</html>
"#
    )
}

/// The user's sessions as an HTML list (or why there is none).
fn render_devices(devices: &Result<Vec<Device>, String>) -> String {
    match devices {
        Ok(devices) => {
            let items: String = devices
                .iter()
                .map(|d| {
                    let this = if d.current {
                        " <em>(this session)</em>"
                    } else {
                        ""
                    };
                    format!("<li>{}{this}</li>\n", escape(&d.label))
                })
                .collect();
            format!("<p>Your sessions:</p>\n<ul id=\"devices\">\n{items}</ul>")
        }
        Err(why) => format!("<p id=\"devices\">{}</p>", escape(why)),
    }
}

/// The flash after a login with `user` (empty: nobody logged in).
pub(crate) fn welcome(user: &str) -> String {
    if user.is_empty() {
        "Enter a user name to log in.".to_owned()
    } else {
        format!("Welcome, {user}!")
    }
}

/// The flash after "Renew".
pub(crate) const RENEWED: &str = "Session renewed: same id, new expiry.";
/// The flash after "Regenerate id".
pub(crate) const REGENERATED: &str = "New session id, same data.";
/// The flash after "Store 10 KB".
pub(crate) const STORED: &str = "Stored 10 KB in the session.";
/// The flash after "Clear data".
pub(crate) const CLEARED: &str = "Cleared the session's data.";

/// The flash after "Log out other sessions" (`n`: how many; `None`:
/// stateless cookies, which are not counted).
pub(crate) fn logged_out_others(n: Option<usize>) -> String {
    match n {
        Some(1) => "Logged out 1 other session.".to_owned(),
        Some(n) => format!("Logged out {n} other sessions."),
        None => "Logged out your other sessions.".to_owned(),
    }
}

/// What a session is labelled with when the request has no `User-Agent`.
pub(crate) const UNKNOWN_DEVICE: &str = "unknown device";

/// The boxed futures of [`Accounts`].
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The engine's per-user methods ([`SessionEngine::sessions_of`],
/// [`SessionEngine::revoke_all`]) behind a trait object, so that the
/// demos' handlers are not generic over the store.
pub(crate) trait Accounts: Send + Sync + 'static {
    /// Whether the engine is stateless.
    fn is_stateless(&self) -> bool;
    /// [`SessionEngine::sessions_of`].
    fn sessions_of<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<Vec<SessionInfo>, Error>>;
    /// [`SessionEngine::revoke_all`].
    fn revoke_all<'a>(
        &'a self,
        owner: &'a str,
        except: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<usize, Error>>;
}

impl<S: SessionIndex, E: Encoder> Accounts for SessionEngine<S, E> {
    fn is_stateless(&self) -> bool {
        SessionEngine::is_stateless(self)
    }
    fn sessions_of<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<Vec<SessionInfo>, Error>> {
        Box::pin(SessionEngine::sessions_of(self, owner))
    }
    fn revoke_all<'a>(
        &'a self,
        owner: &'a str,
        except: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<usize, Error>> {
        Box::pin(SessionEngine::revoke_all(self, owner, except))
    }
}

/// The demos' handle on the engine's per-user methods.
pub(crate) type Engine = Arc<dyn Accounts>;

/// `engine` as the handlers take it.
pub(crate) fn accounts<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Engine {
    Arc::new(engine)
}

/// One of the user's sessions, as the demos list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Device {
    /// Its label (the `User-Agent` it logged in with).
    pub(crate) label: String,
    /// Whether it is the session of the request.
    pub(crate) current: bool,
}

/// At login (after `regenerate()`): names `user` the session's owner and
/// labels it with the request's `User-Agent`.
pub(crate) fn own<T: SessionData>(session: &Session<T>, user: &str, user_agent: Option<&str>) {
    session.set_owner(user);
    session.set_owner_label(user_agent.unwrap_or(UNKNOWN_DEVICE));
}

/// An answer of the per-user routes: status and plain-text body.
pub(crate) type Answer = (u16, String);

fn unauthorised() -> Answer {
    (401, "Unauthorised".to_owned())
}

/// The status and text for a per-user method's error: 501 with the
/// engine's explanation in stateless mode, 500 when the store failed.
fn failure(error: &Error) -> Answer {
    match error {
        Error::Stateless { .. } => (501, error.to_string()),
        _ => {
            tracing::error!(%error, "per-user sessions");
            (500, "Session store unavailable".to_owned())
        }
    }
}

/// The session's owner's sessions, most recently seen first, the
/// request's own marked; empty when nobody is logged in.
pub(crate) async fn devices<T: SessionData>(
    engine: &dyn Accounts,
    session: &Session<T>,
) -> Result<Vec<Device>, Error> {
    let Some(owner) = session.owner() else {
        return Ok(Vec::new());
    };
    let current = session.id();
    let mut sessions = engine.sessions_of(&owner).await?;
    sessions.sort_by_key(|s| std::cmp::Reverse((s.last_seen, s.created)));
    Ok(sessions
        .into_iter()
        .map(|s| Device {
            current: current.as_ref() == Some(&s.id),
            label: s.label.unwrap_or_else(|| UNKNOWN_DEVICE.to_owned()),
        })
        .collect())
}

/// The page's list of the user's sessions, or why there is none.
pub(crate) async fn page_devices<T: SessionData>(
    engine: &dyn Accounts,
    session: &Session<T>,
) -> Result<Vec<Device>, String> {
    devices(engine, session).await.map_err(|error| match error {
        Error::Stateless { .. } => STATELESS_DEVICES.to_owned(),
        error => failure(&error).1,
    })
}

/// Why the page lists no sessions in stateless mode.
pub(crate) const STATELESS_DEVICES: &str = "Stateless cookies are listed nowhere: \
    start the demo with SESSION_STORE (memory, say) to see your sessions here.";

/// `GET /devices`: one line per session of the logged-in user, its label
/// and `(this session)` for the request's own; 401 when nobody is logged
/// in; 501 in stateless mode, where cookies are listed nowhere.
pub(crate) async fn devices_route<T: SessionData>(
    engine: &dyn Accounts,
    session: &Session<T>,
) -> Answer {
    if session.owner().is_none() {
        return unauthorised();
    }
    match devices(engine, session).await {
        Ok(devices) => (
            200,
            devices
                .iter()
                .map(|d| {
                    let this = if d.current { " (this session)" } else { "" };
                    format!("{}{this}\n", d.label)
                })
                .collect(),
        ),
        Err(error) => failure(&error),
    }
}

/// Logs out every session of the session's owner but the request's own:
/// how many (`None` for stateless cookies, which are not counted), or the
/// answer to give instead (nobody logged in, no revocation possible).
pub(crate) async fn logout_others<T: SessionData>(
    engine: &dyn Accounts,
    session: &Session<T>,
    user_agent: Option<&str>,
) -> Result<Option<usize>, Answer> {
    let Some(owner) = session.owner() else {
        return Err(unauthorised());
    };
    let revoked = engine
        .revoke_all(&owner, session.id().as_ref())
        .await
        .map_err(|error| failure(&error))?;
    if engine.is_stateless() {
        // Every cookie of the owner logged in before now is revoked, this
        // one too: log it in again, after the revocation.
        session.clear_owner();
        own(session, &owner, user_agent);
        return Ok(None);
    }
    Ok(Some(revoked))
}

/// `POST /logout-everywhere`: 204 once every other session of the
/// logged-in user is logged out; 401 when nobody is logged in.
pub(crate) async fn logout_everywhere_route<T: SessionData>(
    engine: &dyn Accounts,
    session: &Session<T>,
    user_agent: Option<&str>,
) -> Answer {
    match logout_others(engine, session, user_agent).await {
        Ok(_) => (204, String::new()),
        Err(answer) => answer,
    }
}
