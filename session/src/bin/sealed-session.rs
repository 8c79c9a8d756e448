//! `sealed-session`: open, seal and inspect session cookies from the
//! command line, to debug "why is my user logged out".
//!
//! ```text
//! sealed-session unseal [COOKIE]    open a cookie (argument, or stdin), print its record
//! sealed-session seal [JSON]        seal a JSON record (argument, or stdin) into a cookie value
//! sealed-session inspect [COOKIE]   what a cookie tells without opening it (size, chunks,
//!                                   iron header: prefix, secret id, token expiry), and with a
//!                                   secret that opens it its session id and `_expires`
//!
//! options:
//!   --json                 print one JSON object on stdout (errors too: {"error": …})
//!   --secret-file PATH     read the secret (or an `id=secret,…` keyring) from a file
//!   --cookie-name NAME     unseal, inspect: the session cookie's name (default sid)
//!   --max-age SECONDS      seal: set `_expires` to now + SECONDS when the record has none
//!                          (default 86400)
//!   -h, --help             the full help, with the exit codes
//! ```
//!
//! COOKIE is the bare value, `sid=…` as copied from a browser, or a whole
//! `Cookie` header: chunked cookies (`sid.0`, `sid.1`, … written by
//! `CookieSizePolicy::Chunk`) are joined as the server joins them.
//!
//! The secret comes from --secret-file, else SESSION_SECRETS, else
//! SESSION_SECRET: never from the command line, where it would land in
//! shell history and `ps` (`--secret` is refused). `inspect` works without
//! one.
//!
//! Exit codes, for scripts:
//!
//! - `0`: done (`unseal`: the cookie opened and has not expired);
//! - `1`: the cookie could not be opened (tampered, truncated, sealed with
//!   another secret), is not a session cookie, or has expired (`unseal`
//!   still prints the expired record);
//! - `2`: usage error: bad arguments (clap's own usage errors), no secret,
//!   an unreadable secret file or invalid keyring, a record that is not a
//!   JSON object.
//!
//! Build it with `cargo install sealed-session --features cli`, or run it
//! from the repository: `cargo run -p sealed-session --features cli --bin sealed-session -- unseal`.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use sealed_session::iron::{MAC_PREFIX, MAX_TOKEN_LEN};
use sealed_session::{
    EXPIRES_KEY, Encoder, IronEncoder, Keyring, OWNER_KEY, Record, STORE_ID_KEY, SessionId,
};
use serde_json::{Value, json};

/// `--help`'s last words.
const AFTER_HELP: &str = "\
The secret comes from --secret-file, else SESSION_SECRETS (id=secret,… newest
first), else SESSION_SECRET: never from the command line (shell history, `ps`).
`inspect` works without one.

Exit codes:
  0  done (unseal: the cookie opened and has not expired)
  1  the cookie could not be opened (tampered, truncated, another secret),
     is not a session cookie, or has expired
  2  usage error: bad arguments, no secret, unreadable secret file or invalid
     keyring, a record that is not a JSON object";

/// Open, seal and inspect sealed-session (iron `Fe26.2`) cookies.
#[derive(Debug, Parser)]
#[command(name = "sealed-session", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print one JSON object on stdout (a failure too: `{"error": …}`).
    #[arg(long, global = true)]
    json: bool,
    /// Read the secret (or an `id=secret,…` keyring) from this file.
    #[arg(long, global = true, value_name = "PATH")]
    secret_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open a cookie and print its record and expiry.
    Unseal(CookieArgs),
    /// Seal a JSON record into a cookie value.
    Seal {
        /// The record, a JSON object; read from stdin when absent.
        #[arg(value_name = "JSON")]
        record: Option<String>,
        /// Set `_expires` to now + SECONDS when the record has none.
        #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
        max_age: u64,
    },
    /// Print what a cookie tells without opening it (size, chunks, iron
    /// header); with a secret that opens it, its session id and expiry.
    Inspect(CookieArgs),
}

#[derive(Debug, Args)]
struct CookieArgs {
    /// The cookie: its value, `sid=…`, or a whole Cookie header (chunks
    /// `sid.0`, `sid.1`, … are joined); read from stdin when absent.
    cookie: Option<String>,
    /// The session cookie's name.
    #[arg(long, value_name = "NAME", default_value = "sid")]
    cookie_name: String,
}

/// Why a command failed, and its exit code.
#[derive(Debug)]
enum Failure {
    /// The cookie is bad: exit 1.
    Cookie(String),
    /// The request is: exit 2.
    Usage(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Self::Cookie(_) => 1,
            Self::Usage(_) => 2,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Cookie(message) | Self::Usage(message) => message,
        }
    }
}

/// What a command prints, and whether the cookie was good.
struct Report {
    text: String,
    json: Value,
    /// `false`: exit 1 after printing (an expired or unopenable cookie);
    /// `inspect` says it as `"ok"` in its JSON.
    ok: bool,
}

fn main() -> ExitCode {
    // Before clap, so that the refusal says why whatever else is wrong.
    if refuses_secret_argument(std::env::args().skip(1)) {
        eprintln!(
            "error: secrets are not taken from the command line (shell history, `ps`): \
             use --secret-file PATH, SESSION_SECRETS or SESSION_SECRET"
        );
        return ExitCode::from(2);
    }
    // Usage errors exit 2, --help and --version 0 (clap's codes).
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(report) => {
            if json {
                println!("{}", report.json);
            } else {
                println!("{}", report.text);
            }
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(failure) => {
            if json {
                println!("{}", json!({ "error": failure.message() }));
            } else {
                eprintln!("error: {}", failure.message());
            }
            ExitCode::from(failure.code())
        }
    }
}

/// `--secret` or `--secret=…` before any `--`.
fn refuses_secret_argument(args: impl Iterator<Item = String>) -> bool {
    args.take_while(|arg| arg != "--")
        .any(|arg| arg == "--secret" || arg.starts_with("--secret="))
}

fn run(cli: Cli) -> Result<Report, Failure> {
    let ring = keyring(cli.secret_file.as_deref())?;
    let need_secret = || {
        ring.as_ref().ok_or_else(|| {
            Failure::Usage(
                "no secret: set SESSION_SECRET (or SESSION_SECRETS), or pass --secret-file"
                    .to_owned(),
            )
        })
    };
    match cli.command {
        Command::Unseal(args) => {
            let ring = need_secret()?;
            let found = find_cookie(&input(args.cookie)?, &args.cookie_name)?;
            unseal(&found.value, ring)
        }
        Command::Seal { record, max_age } => {
            let ring = need_secret()?;
            seal(&input(record)?, ring, max_age)
        }
        Command::Inspect(args) => {
            let found = find_cookie(&input(args.cookie)?, &args.cookie_name)?;
            Ok(inspect(&found, ring.as_ref()))
        }
    }
}

/// The keyring, if a secret was given.
fn keyring(secret_file: Option<&std::path::Path>) -> Result<Option<Keyring>, Failure> {
    let spec = match secret_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| {
                Failure::Usage(format!(
                    "cannot read the secret file `{}`: {e}",
                    path.display()
                ))
            })?
            .trim()
            .to_owned(),
        None => match std::env::var("SESSION_SECRETS").or_else(|_| std::env::var("SESSION_SECRET"))
        {
            Ok(spec) => spec,
            Err(_) => return Ok(None),
        },
    };
    Keyring::parse(&spec)
        .map(Some)
        .map_err(|e| Failure::Usage(chain(&e)))
}

fn input(arg: Option<String>) -> Result<String, Failure> {
    match arg {
        Some(text) => Ok(text.trim().to_owned()),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::Usage(format!("cannot read stdin: {e}")))?;
            Ok(text.trim().to_owned())
        }
    }
}

/// The session cookie found in the input.
struct Found {
    name: String,
    /// Percent-decoded; the chunks joined.
    value: String,
    /// How many `NAME.N` chunks were joined (0: a cookie of one piece).
    chunks: usize,
}

/// The cookie `name` in `input`: a bare value, `name=value`, or a Cookie
/// header, where `name` wins over chunks `name.0`, `name.1`, … (joined up
/// to the first gap), as the server reads it.
fn find_cookie(input: &str, name: &str) -> Result<Found, Failure> {
    if input.is_empty() {
        return Err(Failure::Usage(
            "no cookie: pass it as an argument or on stdin".to_owned(),
        ));
    }
    let found = |value: String, chunks| Found {
        name: name.to_owned(),
        value,
        chunks,
    };
    // A bare value (iron tokens and ids have no `=`).
    if input.starts_with("Fe26") || !input.contains('=') {
        let value = cookie::Cookie::parse_encoded(format!("{name}={input}"))
            .map_or_else(|_| input.to_owned(), |c| c.value().to_owned());
        return Ok(found(value, 0));
    }
    let mut whole = None;
    let mut chunks: Vec<Option<String>> = Vec::new();
    let mut seen = Vec::new();
    for piece in input.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Ok(cookie) = cookie::Cookie::parse_encoded(piece) else {
            continue;
        };
        seen.push(cookie.name().to_owned());
        let Some(rest) = cookie.name().strip_prefix(name) else {
            continue;
        };
        let value = cookie.value().to_owned();
        if rest.is_empty() {
            whole.get_or_insert(value);
        } else if let Some(n) = rest.strip_prefix('.').and_then(|n| n.parse::<usize>().ok())
            && n < 64
        {
            if chunks.len() <= n {
                chunks.resize(n + 1, None);
            }
            chunks[n].get_or_insert(value);
        }
    }
    if let Some(value) = whole {
        return Ok(found(value, 0));
    }
    let joined: Vec<String> = chunks.into_iter().map_while(|chunk| chunk).collect();
    if joined.is_empty() {
        return Err(Failure::Cookie(format!(
            "no `{name}` cookie (nor chunks `{name}.0`, …) in the input (cookies seen: {}): \
             pass the session cookie, or its name with --cookie-name",
            if seen.is_empty() {
                "none".to_owned()
            } else {
                seen.join(", ")
            }
        )));
    }
    Ok(found(joined.concat(), joined.len()))
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `in 42s (at … ms since the epoch)` or `EXPIRED 42s ago (…)`, and
/// whether it has expired.
fn describe_expiry(ms: u64) -> (String, bool) {
    let now = now();
    let at = Duration::from_millis(ms);
    if at >= now {
        (
            format!("in {}s (at {ms} ms since the epoch)", (at - now).as_secs()),
            false,
        )
    } else {
        (
            format!(
                "EXPIRED {}s ago (at {ms} ms since the epoch)",
                (now - at).as_secs()
            ),
            true,
        )
    }
}

fn unseal(value: &str, ring: &Keyring) -> Result<Report, Failure> {
    let decoded = IronEncoder
        .decode(value, ring)
        .map_err(|e| Failure::Cookie(chain(&e)))?;
    let record = &decoded.record;
    let mut text = serde_json::to_string_pretty(record).unwrap_or_default();
    let expires = record.get(EXPIRES_KEY).and_then(Value::as_u64);
    let expired = match expires {
        Some(ms) => {
            let (when, expired) = describe_expiry(ms);
            text.push_str("\nexpires ");
            text.push_str(&when);
            if expired {
                text.push_str(": the server treats it as no session");
            }
            expired
        }
        None => {
            text.push_str("\nno _expires: the session lasts as long as the cookie");
            false
        }
    };
    if decoded.stale {
        text.push_str("\nsealed with an older secret: the server re-seals it on the next request");
    }
    Ok(Report {
        text,
        json: json!({
            "record": record,
            "expires_ms": expires,
            "expired": expired,
            "stale": decoded.stale,
        }),
        ok: !expired,
    })
}

fn seal(json: &str, ring: &Keyring, max_age: u64) -> Result<Report, Failure> {
    let mut record: Record = serde_json::from_str(json)
        .map_err(|e| Failure::Usage(format!("the record is not a JSON object: {e}")))?;
    if !record.contains_key(EXPIRES_KEY) {
        let expires = now() + Duration::from_secs(max_age);
        let ms = u64::try_from(expires.as_millis()).unwrap_or(u64::MAX);
        record.insert(EXPIRES_KEY.to_owned(), ms.into());
    }
    let cookie = IronEncoder
        .encode(&record, ring)
        .map_err(|e| Failure::Usage(chain(&e)))?;
    Ok(Report {
        json: json!({ "cookie": cookie }),
        text: cookie,
        ok: true,
    })
}

/// The iron header of a token: what can be read without the secret.
struct Header<'a> {
    prefix: &'a str,
    password_id: &'a str,
    /// The token's own expiration (iron's `ttl`; hono-session sets none).
    expiration: Option<u64>,
}

/// The 8 `*`-separated parts of `Fe26.2`, or why not.
fn header(token: &str) -> Result<Header<'_>, String> {
    let parts: Vec<&str> = token.split('*').collect();
    if parts.len() != 8 {
        return Err(format!(
            "it has {} `*`-separated parts, not the 8 of an iron token: truncated \
             (a cookie size limit?) or not sealed by iron",
            parts.len()
        ));
    }
    let expiration = match parts[5] {
        "" => None,
        digits => Some(
            digits
                .parse()
                .map_err(|_| "its expiration is not a number of milliseconds".to_owned())?,
        ),
    };
    Ok(Header {
        prefix: parts[0],
        password_id: parts[1],
        expiration,
    })
}

fn inspect(found: &Found, ring: Option<&Keyring>) -> Report {
    let value = found.value.as_str();
    let mut lines = vec![format!(
        "cookie `{}`: {} bytes, {}",
        found.name,
        value.len(),
        match found.chunks {
            0 => "one cookie (not chunked)".to_owned(),
            n => format!(
                "joined from {n} chunks ({0}.0 … {0}.{1})",
                found.name,
                n - 1
            ),
        }
    )];
    let mut out = json!({
        "cookie_name": found.name,
        "size": value.len(),
        "chunks": found.chunks,
    });
    let mut ok = true;

    if !value.starts_with("Fe26") {
        if SessionId::parse(value).is_some() {
            lines.push(format!(
                "format: a session id (store mode): the record is in the server's store\n\
                 session id: {value}"
            ));
            out["kind"] = json!("id");
            out["session_id"] = json!(value);
        } else {
            lines.push(
                "format: neither an iron token (Fe26.2*…) nor a session id: \
                 not a session cookie written by sealed-session or hono-session"
                    .to_owned(),
            );
            out["kind"] = json!("unknown");
            ok = false;
        }
        return finish(lines, out, ok);
    }

    out["kind"] = json!("iron");
    if value.len() > MAX_TOKEN_LEN {
        lines.push(format!(
            "format: a {}-byte token, over the {MAX_TOKEN_LEN} bytes the server examines",
            value.len()
        ));
        return finish(lines, out, false);
    }
    match header(value) {
        Ok(header) => {
            let prefix_note = if header.prefix == MAC_PREFIX {
                ""
            } else {
                " (not Fe26.2: another iron version, the server cannot open it)"
            };
            lines.push(format!("format: iron {}{prefix_note}", header.prefix));
            ok &= header.prefix == MAC_PREFIX;
            lines.push(if header.password_id.is_empty() {
                "secret id: none (sealed with a secret without id)".to_owned()
            } else {
                format!("secret id: {}", header.password_id)
            });
            let expiration = match header.expiration {
                Some(ms) => {
                    let (when, expired) = describe_expiry(ms);
                    ok &= !expired;
                    format!("token expires {when}")
                }
                None => "token expiry: none (the session's own is `_expires`, inside)".to_owned(),
            };
            lines.push(expiration);
            out["iron"] = json!({
                "prefix": header.prefix,
                "password_id": (!header.password_id.is_empty()).then_some(header.password_id),
                "expiration_ms": header.expiration,
            });
        }
        Err(why) => {
            lines.push(format!("format: not a whole iron token: {why}"));
            return finish(lines, out, false);
        }
    }

    let Some(ring) = ring else {
        lines.push(
            "opened: no (no secret; set SESSION_SECRET or SESSION_SECRETS, or pass \
             --secret-file, to read its session id and _expires)"
                .to_owned(),
        );
        out["opened"] = Value::Null;
        return finish(lines, out, ok);
    };
    match IronEncoder.decode(value, ring) {
        Err(e) => {
            let why = chain(&e);
            lines.push(format!("opened: no: {why}"));
            out["opened"] = json!(false);
            out["error"] = json!(why);
            ok = false;
        }
        Ok(decoded) => {
            let record = &decoded.record;
            lines.push(if decoded.stale {
                "opened: yes, with an older secret (the server re-seals it)".to_owned()
            } else {
                "opened: yes".to_owned()
            });
            let session_id = record.get(STORE_ID_KEY).and_then(Value::as_str);
            lines.push(match session_id {
                Some(id) => format!(
                    "session id: {id} (`{STORE_ID_KEY}`: the record overflowed to the store)"
                ),
                None => {
                    "session id: none (a stateless session: the record is the cookie)".to_owned()
                }
            });
            let owner = record
                .get(OWNER_KEY)
                .and_then(|owner| owner.get("id"))
                .and_then(Value::as_str);
            if let Some(owner) = owner {
                lines.push(format!("owner: {owner}"));
            }
            let expires = record.get(EXPIRES_KEY).and_then(Value::as_u64);
            lines.push(match expires {
                Some(ms) => {
                    let (when, expired) = describe_expiry(ms);
                    ok &= !expired;
                    format!("_expires: {when}")
                }
                None => "_expires: none (the session lasts as long as the cookie)".to_owned(),
            });
            out["opened"] = json!(true);
            out["stale"] = json!(decoded.stale);
            out["session_id"] = json!(session_id);
            out["owner_id"] = json!(owner);
            out["expires_ms"] = json!(expires);
        }
    }
    finish(lines, out, ok)
}

fn finish(lines: Vec<String>, mut json: Value, ok: bool) -> Report {
    json["ok"] = json!(ok);
    Report {
        text: lines.join("\n"),
        json,
        ok,
    }
}

/// `error` and its causes on one line (`a: b: c`): the library's errors
/// keep their causes in `source()`, not in their own message.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
