//! The `sealed-session` command-line tool, run as a user runs it: the
//! built binary, its stdout, stderr and exit code (0 done, 1 a bad cookie,
//! 2 a usage error).

use std::io::Write as _;
use std::process::{Command, Stdio};

const SECRET: &str = "hono-session-interop-secret-0123456789-abcdefghijklmnop";
const OTHER_SECRET: &str = "another-secret-of-at-least-32-characters!";

/// What one run printed, and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// stdout as JSON.
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

fn run(args: &[&str], stdin: &str, secret: Option<&str>) -> Run {
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
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A cookie value sealed by the tool.
fn seal(record: &str) -> String {
    let sealed = run(&["seal", record], "", Some(SECRET));
    assert_eq!(sealed.code, 0, "{}", sealed.stderr);
    sealed.stdout.trim().to_owned()
}

#[test]
fn help_lists_the_commands_and_the_exit_codes() {
    let help = run(&["--help"], "", None);
    assert_eq!(help.code, 0, "{}", help.stderr);
    for text in [
        "unseal",
        "seal",
        "inspect",
        "--json",
        "--secret-file",
        "Exit codes:",
        "0  done",
        "1  the cookie could not be opened",
        "2  usage error",
        "never from the command line",
    ] {
        assert!(
            help.stdout.contains(text),
            "`{text}` not in:\n{}",
            help.stdout
        );
    }
    let inspect = run(&["inspect", "--help"], "", None);
    assert_eq!(inspect.code, 0);
    assert!(
        inspect.stdout.contains("--cookie-name"),
        "{}",
        inspect.stdout
    );
}

#[test]
fn seal_then_unseal_round_trips_and_reports_expiry() {
    let token = seal(r#"{"userId":"42"}"#);
    assert!(token.starts_with("Fe26.2**"), "{token}");
    let unsealed = run(&["unseal", &token], "", Some(SECRET));
    assert_eq!(unsealed.code, 0, "{}", unsealed.stderr);
    assert!(
        unsealed.stdout.contains(r#""userId": "42""#),
        "{}",
        unsealed.stdout
    );
    assert!(
        unsealed.stdout.contains("expires in 86399s")
            || unsealed.stdout.contains("expires in 86400s"),
        "{}",
        unsealed.stdout
    );
}

#[test]
fn json_output_parses() {
    let sealed = run(&["--json", "seal", r#"{"userId":"7"}"#], "", Some(SECRET));
    assert_eq!(sealed.code, 0, "{}", sealed.stderr);
    let cookie = sealed.json()["cookie"].as_str().unwrap().to_owned();
    assert!(cookie.starts_with("Fe26.2**"));

    // `--json` after the subcommand too (a global flag).
    let unsealed = run(&["unseal", "--json", &cookie], "", Some(SECRET));
    assert_eq!(unsealed.code, 0, "{}", unsealed.stderr);
    let out = unsealed.json();
    assert_eq!(out["record"]["userId"], "7");
    assert!(out["expires_ms"].as_u64().is_some(), "{out}");
    assert_eq!(out["expired"], false);
    assert_eq!(out["stale"], false);

    let inspected = run(&["inspect", "--json", &cookie], "", Some(SECRET));
    assert_eq!(inspected.code, 0, "{}", inspected.stderr);
    let out = inspected.json();
    assert_eq!(out["kind"], "iron");
    assert_eq!(out["size"], cookie.len());
    assert_eq!(out["opened"], true);
    assert_eq!(out["expires_ms"], unsealed.json()["expires_ms"]);

    // A failure is JSON too, with its exit code.
    let failed = run(&["--json", "unseal", "Fe26.2**nope"], "", Some(SECRET));
    assert_eq!(failed.code, 1);
    assert!(
        failed.json()["error"]
            .as_str()
            .unwrap()
            .contains("8 `*`-separated parts")
    );
}

#[test]
fn a_tampered_cookie_exits_1_and_says_why() {
    let token = seal(r#"{"userId":"42"}"#);
    // Change the first character of the ciphertext (the fifth part).
    let mut parts: Vec<String> = token.split('*').map(str::to_owned).collect();
    let first = if parts[4].starts_with('A') { "B" } else { "A" };
    parts[4].replace_range(..1, first);
    let tampered = parts.join("*");
    assert_ne!(tampered, token);
    let unsealed = run(&["unseal", &tampered], "", Some(SECRET));
    assert_eq!(unsealed.code, 1, "{}", unsealed.stderr);
    assert!(unsealed.stdout.is_empty());
    // The message, then its cause (kept in `source()`, not in the message).
    assert!(
        unsealed.stderr.contains(
            "could not open the session cookie: the sealed token failed its integrity check"
        ),
        "{}",
        unsealed.stderr
    );
    let truncated = run(&["unseal", "Fe26.2**nope"], "", Some(SECRET));
    assert_eq!(truncated.code, 1);
    assert!(
        truncated
            .stderr
            .contains("could not open the session cookie: the sealed token does not have 8"),
        "{}",
        truncated.stderr
    );
}

#[test]
fn an_expired_session_is_printed_and_exits_1() {
    let token = seal(r#"{"_expires": 1000, "userId": "1"}"#);
    let unsealed = run(&["unseal", &token], "", Some(SECRET));
    assert_eq!(unsealed.code, 1);
    assert!(unsealed.stdout.contains("EXPIRED"), "{}", unsealed.stdout);
    assert!(
        unsealed.stdout.contains(r#""userId": "1""#),
        "{}",
        unsealed.stdout
    );
    let inspected = run(&["inspect", &token], "", Some(SECRET));
    assert_eq!(inspected.code, 1);
    assert!(
        inspected.stdout.contains("_expires: EXPIRED"),
        "{}",
        inspected.stdout
    );
}

#[test]
fn bad_usage_exits_2() {
    for (args, says) in [
        (&["frobnicate"][..], "unrecognized subcommand"),
        (&["unseal", "--max-age", "5"][..], "unexpected argument"),
        (&["seal", "--max-age", "soon"][..], "invalid value"),
        (&[][..], "Usage:"),
    ] {
        let out = run(args, "", Some(SECRET));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    let not_json = run(&["seal", "[1, 2]"], "", Some(SECRET));
    assert_eq!(not_json.code, 2);
    assert!(
        not_json.stderr.contains("not a JSON object"),
        "{}",
        not_json.stderr
    );
}

#[test]
fn secrets_never_come_from_argv() {
    for args in [
        &["seal", "--secret", SECRET][..],
        &["--secret=x", "unseal"][..],
    ] {
        let out = run(args, "{}", None);
        assert_eq!(out.code, 2);
        assert!(
            out.stderr.contains("not taken from the command line"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains(SECRET));
    }
    let no_secret = run(&["seal"], "{}", None);
    assert_eq!(no_secret.code, 2);
    assert!(
        no_secret.stderr.contains("no secret"),
        "{}",
        no_secret.stderr
    );

    let file = std::env::temp_dir().join(format!("sealed-session-cli-{}", std::process::id()));
    std::fs::write(&file, format!("k1={SECRET}\n")).unwrap();
    let sealed = run(
        &["seal", "--secret-file", file.to_str().unwrap()],
        "{}",
        None,
    );
    std::fs::remove_file(&file).unwrap();
    assert_eq!(sealed.code, 0, "{}", sealed.stderr);
    assert!(sealed.stdout.starts_with("Fe26.2*k1*"), "{}", sealed.stdout);
    // Without the secret, inspect still names its key id.
    let inspected = run(&["inspect", sealed.stdout.trim()], "", None);
    assert_eq!(inspected.code, 0, "{}", inspected.stderr);
    assert!(
        inspected.stdout.contains("secret id: k1"),
        "{}",
        inspected.stdout
    );
}

#[test]
fn unseal_reads_a_js_sealed_cookie_from_stdin_as_copied_from_a_browser() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("data/iron_vectors.json")).unwrap();
    let token = vectors["positive"][1]["token"].as_str().unwrap();
    let unsealed = run(&["unseal"], &format!("sid={token}\n"), Some(SECRET));
    assert_eq!(unsealed.code, 0, "{}", unsealed.stderr);
    assert!(
        unsealed.stdout.contains(r#""userId": "123""#),
        "{}",
        unsealed.stdout
    );
}

#[test]
fn inspect_without_the_secret_tells_size_chunks_and_header() {
    let token = seal(r#"{"userId":"42"}"#);
    let inspected = run(&["inspect", &token], "", None);
    assert_eq!(inspected.code, 0, "{}", inspected.stderr);
    let text = &inspected.stdout;
    assert!(
        text.contains(&format!(
            "cookie `sid`: {} bytes, one cookie (not chunked)",
            token.len()
        )),
        "{text}"
    );
    assert!(text.contains("format: iron Fe26.2"), "{text}");
    assert!(text.contains("secret id: none"), "{text}");
    assert!(text.contains("token expiry: none"), "{text}");
    assert!(text.contains("opened: no (no secret"), "{text}");
    assert!(
        !text.contains("userId"),
        "nothing of the record without the secret"
    );

    // A chunked cookie, as a Cookie header copied from a browser: the
    // chunks are joined in order, the other cookies ignored.
    let (a, rest) = token.split_at(token.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    let header = format!("sx=1; sid.1={b}; theme=dark; sid.0={a}; sid.2={c}");
    let inspected = run(&["--json", "inspect"], &header, None);
    assert_eq!(inspected.code, 0, "{}", inspected.stderr);
    let out = inspected.json();
    assert_eq!(out["chunks"], 3);
    assert_eq!(out["size"], token.len());
    assert_eq!(out["kind"], "iron");
    assert_eq!(out["iron"]["prefix"], "Fe26.2");
    assert_eq!(out["iron"]["password_id"], serde_json::Value::Null);
    assert_eq!(out["iron"]["expiration_ms"], serde_json::Value::Null);
    assert_eq!(out["opened"], serde_json::Value::Null);
    assert_eq!(out["ok"], true);

    // With a secret that does not open it: the same facts, and exit 1.
    let wrong = run(&["inspect", &token], "", Some(OTHER_SECRET));
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(
        wrong.stdout.contains("format: iron Fe26.2"),
        "{}",
        wrong.stdout
    );
    assert!(
        wrong.stdout.contains("opened: no: could not open"),
        "{}",
        wrong.stdout
    );

    // A truncated cookie (a size limit cut it): what is left, and exit 1.
    let cut = run(&["inspect", &token[..token.len() / 2]], "", None);
    assert_eq!(cut.code, 1);
    assert!(
        cut.stdout.contains("not a whole iron token"),
        "{}",
        cut.stdout
    );

    // No cookie of that name.
    let none = run(&["inspect", "sx=1; theme=dark"], "", None);
    assert_eq!(none.code, 1);
    assert!(
        none.stderr.contains("cookies seen: sx, theme"),
        "{}",
        none.stderr
    );
    assert!(none.stderr.contains("--cookie-name"), "{}", none.stderr);
}

#[test]
fn inspect_with_the_secret_adds_id_owner_and_expiry() {
    let token = seal(
        r#"{"_storeId": "b3ZlcmZsb3ctaWQtMTIzNDU2Nzg5MA", "_owner": {"id": "u-9", "since": 1}, "_expires": 4102444800000}"#,
    );
    let inspected = run(
        &[
            "--json",
            "inspect",
            &format!("session={token}"),
            "--cookie-name",
            "session",
        ],
        "",
        Some(SECRET),
    );
    assert_eq!(inspected.code, 0, "{}", inspected.stderr);
    let out = inspected.json();
    assert_eq!(out["cookie_name"], "session");
    assert_eq!(out["opened"], true);
    assert_eq!(out["session_id"], "b3ZlcmZsb3ctaWQtMTIzNDU2Nzg5MA");
    assert_eq!(out["owner_id"], "u-9");
    assert_eq!(out["expires_ms"], 4_102_444_800_000_u64);

    // A store-mode cookie is the id itself.
    let id = "dGhpcy1pcy1hLXNlc3Npb24taWQ";
    let inspected = run(&["inspect", &format!("sid={id}")], "", None);
    assert_eq!(inspected.code, 0, "{}", inspected.stderr);
    assert!(
        inspected.stdout.contains("store mode"),
        "{}",
        inspected.stdout
    );
    assert!(
        inspected.stdout.contains(&format!("session id: {id}")),
        "{}",
        inspected.stdout
    );
}
