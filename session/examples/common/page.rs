//! The demo page (`GET /`) and its form routes (`POST /ui/…`), shared by
//! the five demo servers (each includes this file with `#[path]`; it sits
//! in a subdirectory so Cargo does not take it for an example).
//!
//! Plain HTML forms, no JavaScript: each button posts to a `/ui/…` route,
//! which answers `303 See Other` to `/`. The `/ui/` prefix keeps the API
//! routes (`POST /login?user=ID` → 204, …) exactly as the black-box tests
//! expect them.

/// Where every form route sends the browser back to.
pub(crate) const HOME: &str = "/";

/// How much the "big data" button stores: over the 4 KB a browser keeps in
/// one cookie, so the cookie-size policy shows (`error`: a 500; `chunk`:
/// `sid.0`, `sid.1`, …).
pub(crate) const BIG_DATA_LEN: usize = 10 * 1024;

/// What the page shows.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// The logged-in user, if any.
    pub(crate) user: Option<String>,
    /// The visit counter (this visit included).
    pub(crate) count: u64,
    /// The flash message, shown once.
    pub(crate) flash: Option<String>,
    /// The length of the session's `data` field.
    pub(crate) data_len: usize,
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
             <form method=\"post\" action=\"/ui/logout\"><button id=\"logout\">Log out</button></form>",
            escape(user)
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
</body>
</html>
"#
    )
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
