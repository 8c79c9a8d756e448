//! The `sealed-session` command-line tool.
#![cfg(feature = "cli")]

use std::io::Write as _;
use std::process::{Command, Stdio};

const SECRET: &str = "hono-session-interop-secret-0123456789-abcdefghijklmnop";

fn run(args: &[&str], stdin: &str, secret: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealed-session"));
    cmd.args(args)
        .env_remove("SESSION_SECRET")
        .env_remove("SESSION_SECRETS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(secret) = secret {
        cmd.env("SESSION_SECRET", secret);
    }
    let mut child = cmd.spawn().unwrap();
    // The tool may exit before reading (bad arguments): a closed pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn seal_then_unseal_round_trips_and_reports_expiry() {
    let (ok, token, _) = run(&["seal"], r#"{"userId":"42"}"#, Some(SECRET));
    assert!(ok);
    assert!(token.starts_with("Fe26.2**"));
    let (ok, out, _) = run(&["unseal", token.trim()], "", Some(SECRET));
    assert!(ok);
    assert!(out.contains(r#""userId": "42""#), "{out}");
    assert!(
        out.contains("expires in 86399s") || out.contains("expires in 86400s"),
        "{out}"
    );
}

#[test]
fn unseal_reads_a_js_sealed_cookie_from_stdin_as_copied_from_a_browser() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("data/iron_vectors.json")).unwrap();
    let token = vectors["positive"][1]["token"].as_str().unwrap();
    let (ok, out, _) = run(&["unseal"], &format!("sid={token}\n"), Some(SECRET));
    assert!(ok);
    assert!(out.contains(r#""userId": "123""#), "{out}");
}

#[test]
fn expired_and_tampered_cookies_are_explained() {
    let (_, token, _) = run(&["seal"], r#"{"_expires": 1000}"#, Some(SECRET));
    let (ok, out, _) = run(&["unseal", token.trim()], "", Some(SECRET));
    assert!(ok);
    assert!(out.contains("EXPIRED"), "{out}");
    let (ok, _, err) = run(&["unseal", "Fe26.2**nope"], "", Some(SECRET));
    assert!(!ok);
    // The message, then its cause (kept in `source()`, not in the message).
    assert!(
        err.contains("could not open the session cookie: the sealed token does not have 8"),
        "{err}"
    );
}

#[test]
fn secrets_never_come_from_argv() {
    let (ok, _, err) = run(&["seal", "--secret", SECRET], "{}", None);
    assert!(!ok);
    assert!(err.contains("not taken from the command line"), "{err}");
    let (ok, _, err) = run(&["seal"], "{}", None);
    assert!(!ok);
    assert!(err.contains("no secret"), "{err}");
    let file = std::env::temp_dir().join(format!("sealed-session-cli-{}", std::process::id()));
    std::fs::write(&file, format!("k1={SECRET}\n")).unwrap();
    let (ok, token, _) = run(
        &["seal", "--secret-file", file.to_str().unwrap()],
        "{}",
        None,
    );
    std::fs::remove_file(&file).unwrap();
    assert!(ok);
    assert!(token.starts_with("Fe26.2*k1*"), "{token}");
}
