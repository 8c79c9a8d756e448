//! `sealed-session`: open and seal session cookies from the command line,
//! to debug "why is my user logged out".
//!
//! ```text
//! sealed-session unseal [COOKIE]     open a cookie (argument, or stdin), print its record
//! sealed-session seal [JSON]         seal a JSON record (argument, or stdin) into a cookie value
//!
//! options:
//!   --secret-file PATH   read the secret (or an `id=secret,…` keyring) from a file
//!   --max-age SECONDS    seal: set `_expires` to now + SECONDS when the record has none
//!                        (default 86400)
//!
//! The secret comes from --secret-file, else SESSION_SECRETS, else SESSION_SECRET:
//! never from the command line, where it would land in shell history and `ps`.
//! ```
//!
//! Build it with `cargo install sealed-session --features cli`, or run it
//! from the repository: `cargo run -p sealed-session --features cli --bin sealed-session -- unseal`.

use std::io::Read as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealed_session::{EXPIRES_KEY, Encoder, IronEncoder, Keyring, Record};

const USAGE: &str =
    "usage: sealed-session (unseal [COOKIE] | seal [JSON]) [--secret-file PATH] [--max-age SECONDS]
The secret comes from --secret-file, SESSION_SECRETS (id=secret,… newest first) or SESSION_SECRET.";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

struct Args {
    command: String,
    input: Option<String>,
    secret_file: Option<String>,
    max_age: u64,
}

fn parse(args: Vec<String>) -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut secret_file = None;
    let mut max_age = 86_400;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--secret-file" => secret_file = Some(it.next().ok_or("--secret-file needs a path")?),
            "--max-age" => {
                max_age = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--max-age needs a number of seconds")?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            "--secret" => {
                return Err(
                    "secrets are not taken from the command line (shell history, `ps`): \
                            use --secret-file or SESSION_SECRET"
                        .to_owned(),
                );
            }
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let command = positional.next().ok_or(USAGE)?;
    let input = positional.next();
    if positional.next().is_some() {
        return Err(USAGE.to_owned());
    }
    Ok(Args {
        command,
        input,
        secret_file,
        max_age,
    })
}

fn keyring(secret_file: Option<&str>) -> Result<Keyring, String> {
    let spec = match secret_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the secret file `{path}`: {e}"))?
            .trim()
            .to_owned(),
        None => std::env::var("SESSION_SECRETS")
            .or_else(|_| std::env::var("SESSION_SECRET"))
            .map_err(
                |_| "no secret: set SESSION_SECRET (or SESSION_SECRETS), or pass --secret-file",
            )?,
    };
    Keyring::parse(&spec).map_err(|e| chain(&e))
}

fn input(arg: Option<String>) -> Result<String, String> {
    match arg {
        Some(text) => Ok(text),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            Ok(text.trim().to_owned())
        }
    }
}

fn run(args: Vec<String>) -> Result<String, String> {
    let args = parse(args)?;
    let ring = keyring(args.secret_file.as_deref())?;
    let text = input(args.input)?;
    match args.command.as_str() {
        "unseal" => unseal(&text, &ring),
        "seal" => seal(&text, &ring, args.max_age),
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}

fn unseal(cookie: &str, ring: &Keyring) -> Result<String, String> {
    let value = cookie_value(cookie);
    let decoded = IronEncoder.decode(&value, ring).map_err(|e| chain(&e))?;
    let mut out = serde_json::to_string_pretty(&decoded.record).map_err(|e| e.to_string())?;
    match decoded
        .record
        .get(EXPIRES_KEY)
        .and_then(serde_json::Value::as_u64)
    {
        Some(ms) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let expires = Duration::from_millis(ms);
            if expires >= now {
                out.push_str(&format!(
                    "\nexpires in {}s (at {ms} ms since the epoch)",
                    (expires - now).as_secs()
                ));
            } else {
                out.push_str(&format!(
                    "\nEXPIRED {}s ago (at {ms} ms since the epoch): the server treats it as no session",
                    (now - expires).as_secs()
                ));
            }
        }
        None => out.push_str("\nno _expires: the session lasts as long as the cookie"),
    }
    if decoded.stale {
        out.push_str("\nsealed with an older secret: the server re-seals it on the next request");
    }
    Ok(out)
}

fn seal(json: &str, ring: &Keyring, max_age: u64) -> Result<String, String> {
    let mut record: Record =
        serde_json::from_str(json).map_err(|e| format!("the record is not a JSON object: {e}"))?;
    if !record.contains_key(EXPIRES_KEY) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let expires = now + Duration::from_secs(max_age);
        let ms = u64::try_from(expires.as_millis()).unwrap_or(u64::MAX);
        record.insert(EXPIRES_KEY.to_owned(), ms.into());
    }
    IronEncoder.encode(&record, ring).map_err(|e| chain(&e))
}

/// The cookie's value, percent-decoded by the `cookie` crate as the engine
/// decodes it.
fn cookie_value(input: &str) -> String {
    // Accept `sid=…` as copied from a browser's cookie list.
    let pair = match input.split_once('=') {
        Some((name, _)) if !name.starts_with("Fe26") => input.to_owned(),
        _ => format!("sid={input}"),
    };
    cookie::Cookie::parse_encoded(pair).map_or_else(|_| input.to_owned(), |c| c.value().to_owned())
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
