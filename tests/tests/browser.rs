//! The axum demo in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`, one per test, started here on a free port), against the
//! demo binary run as a child process ([`Demo`]), stateless and with the
//! SQLite store.
//!
//! Needs `chromium` and `chromedriver` on `PATH` (Debian: `apt-get install
//! chromium chromium-driver`; `.ci/run` installs them). Without them the
//! tests print why and pass, except under CI (`CI` set), where a missing or
//! broken browser fails them.
//!
//! The login test also takes the guide's screenshot of the demo page:
//! always into the test's target directory, and into
//! `docs/src/images/demo-page.png` when `SESSION_UPDATE_SCREENSHOT=1`.
//!
//! Every wait polls for a state of the page with a generous deadline;
//! nothing here asserts on time.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fantoccini::cookies::Cookie;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use sealed_session_tests::demo::Demo;
use sealed_session_tests::services::{TempDir, free_port, in_ci};
use serde_json::json;

/// How long any one wait (driver start, page load, element) may take: far
/// more than it needs on a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(60);

const SECRET: &str = "a-browser-test-secret-of-at-least-32-chars";
const OLD_SECRET: &str = "the-old-browser-test-secret-32-chars-or-more";
const NEW_SECRET: &str = "the-new-browser-test-secret-32-chars-or-more";
const OTHER_SECRET: &str = "a-secret-neither-old-nor-new-of-32-chars-or-more";

/// The flash after the page's "Renew" button (`session/examples/common/page.rs`).
const RENEWED: &str = "Session renewed: same id, new expiry.";
/// The flash after "Store 10 KB".
const STORED: &str = "Stored 10 KB in the session.";
/// The body of the adapter's 500 when the commit fails (cookie too large).
const COMMIT_FAILED: &str = "Session could not be saved";
/// How much "Store 10 KB" stores.
const BIG_DATA_LEN: u64 = 10 * 1024;

// ---------------------------------------------------------------------------
// The browser and its driver

/// Where `name` is on `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Skips the test with `reason` outside CI; fails it under CI.
fn skip_or_fail<T>(reason: &str) -> Option<T> {
    assert!(!in_ci(), "CI must run the browser tests: {reason}");
    eprintln!("skipped: {reason}");
    None
}

/// A `chromedriver` process of this test's own, in a process group of its
/// own so that dropping it also ends the Chromium processes it started
/// (a failed test must not leave browsers behind).
struct Driver {
    child: Child,
    port: u16,
    chromium: PathBuf,
    log: PathBuf,
    /// Holds the log and every browser profile; removed last.
    dir: TempDir,
}

impl Driver {
    /// Starts one, or returns `None` (outside CI) when Chromium or its
    /// driver is not installed.
    ///
    /// Panics when they are installed but the driver does not start.
    fn start() -> Option<Self> {
        let Some(chromium) = ["chromium", "chromium-browser"]
            .into_iter()
            .find_map(find_on_path)
        else {
            return skip_or_fail(
                "chromium is not installed (apt-get install chromium chromium-driver, \
                 or run bash .ci/run, which installs it)",
            );
        };
        let Some(chromedriver) = find_on_path("chromedriver") else {
            return skip_or_fail(
                "chromedriver is not installed (apt-get install chromium-driver, \
                 or run bash .ci/run, which installs it)",
            );
        };
        let dir = TempDir::new("browser");
        let log = dir.path().join("chromedriver.log");
        // A port is free when picked, not when the driver binds it: when
        // another process took it meanwhile, the driver exits; try another.
        for _ in 0..5 {
            let port = free_port();
            let log_file = std::fs::File::create(&log).expect("create the chromedriver log");
            let mut command = Command::new(&chromedriver);
            command
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone the log file handle"))
                .stderr(log_file);
            #[cfg(unix)]
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            let mut child = command
                .spawn()
                .unwrap_or_else(|e| panic!("could not start {}: {e}", chromedriver.display()));
            let deadline = Instant::now() + WAIT;
            loop {
                if child.try_wait().expect("chromedriver status").is_some() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Self {
                        child,
                        port,
                        chromium,
                        log,
                        dir,
                    });
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "chromedriver did not listen on port {port} within {WAIT:?}; its log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "chromedriver exited on start on five free ports; its last log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// A new browser: its own WebDriver session and its own profile
    /// directory, so it shares no cookies with any other.
    ///
    /// Panics (under CI and outside it: Chromium is installed) when the
    /// browser does not start.
    async fn browser(&self, name: &str) -> Browser {
        let profile = self.dir.path().join(format!("profile-{name}"));
        std::fs::create_dir_all(&profile).expect("create a browser profile directory");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=800,600",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": args,
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Chromium ({}) did not start under chromedriver: {e}\n\
                     check that `{} --headless --no-sandbox --disable-gpu --dump-dom about:blank` \
                     works; chromedriver's log:\n{}",
                    self.chromium.display(),
                    self.chromium.display(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            });
        Browser { client }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browsers it started.
        #[cfg(unix)]
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser (a WebDriver session), with the demo page's vocabulary.
struct Browser {
    client: Client,
}

impl Browser {
    /// Opens `url` and waits for the demo page.
    async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.wait_for_page().await;
    }

    /// Reloads the page and waits for the demo page.
    async fn reload(&self) {
        self.navigate("reload", self.client.refresh()).await;
        self.wait_for_page().await;
    }

    /// Runs `action` (a click, a reload), then waits until another
    /// document than the one before has loaded: the one before carries a
    /// mark that a new document does not.
    async fn navigate(&self, what: &str, action: impl Future<Output = Result<(), CmdError>>) {
        self.client
            .execute("window.__beforeNavigation = true;", vec![])
            .await
            .unwrap_or_else(|e| panic!("{what}: mark the page: {e}"));
        action.await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let deadline = Instant::now() + WAIT;
        loop {
            // During the navigation a script may fail (no document yet):
            // that is not loaded either.
            let loaded = self
                .client
                .execute(
                    "return document.readyState === 'complete' \
                     && window.__beforeNavigation === undefined;",
                    vec![],
                )
                .await;
            if matches!(loaded, Ok(serde_json::Value::Bool(true))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no new page loaded within {WAIT:?} (last check: {loaded:?}); the page:\n{}",
                self.client.source().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the demo page (its visit counter).
    async fn wait_for_page(&self) {
        if let Err(e) = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Id("count"))
            .await
        {
            panic!(
                "not the demo page ({e}) at {:?}:\n{}",
                self.client.current_url().await.map(|u| u.to_string()),
                self.client.source().await.unwrap_or_default()
            );
        }
    }

    /// Clicks the button `id` and waits for the page it leads to (`/`, by
    /// the form's 303; or whatever the server answered instead).
    async fn click(&self, id: &str) {
        let button = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no button #{id} on the page: {e}"));
        self.navigate(&format!("click #{id}"), button.click()).await;
    }

    /// Logs in as `user` with the page's form.
    async fn log_in(&self, user: &str) {
        let field = self
            .client
            .find(Locator::Id("name"))
            .await
            .unwrap_or_else(|e| panic!("no login form on the page (logged in already?): {e}"));
        field.send_keys(user).await.expect("type the user name");
        self.click("login").await;
        self.wait_for_page().await;
    }

    /// The text of the element `id`, `None` when the page has none.
    async fn text(&self, id: &str) -> Option<String> {
        match self.client.find(Locator::Id(id)).await {
            Ok(element) => Some(element.text().await.expect("an element's text")),
            Err(e) if e.is_no_such_element() => None,
            Err(e) => panic!("find #{id}: {e}"),
        }
    }

    /// The logged-in user the page shows (`None`: "Not logged in").
    async fn user(&self) -> Option<String> {
        let user = self.text("user").await;
        let anonymous = self.text("anonymous").await.is_some();
        assert_ne!(
            user.is_some(),
            anonymous,
            "the page shows both or neither of a user and 'Not logged in'"
        );
        user
    }

    /// The flash message the page shows, if any.
    async fn flash(&self) -> Option<String> {
        self.text("flash").await
    }

    /// The visit counter.
    async fn count(&self) -> u64 {
        let text = self.text("count").await.expect("the visit counter");
        text.parse()
            .unwrap_or_else(|_| panic!("a visit counter that is not a number: {text:?}"))
    }

    /// The "Data stored in the session" length.
    async fn data_len(&self) -> u64 {
        let text = self.text("data-len").await.expect("the data length");
        text.parse()
            .unwrap_or_else(|_| panic!("a data length that is not a number: {text:?}"))
    }

    /// The page's whole text (for pages that are not the demo page).
    async fn body_text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("a body")
            .text()
            .await
            .expect("the body's text")
    }

    /// The cookies the browser keeps for the current page's host, by name.
    async fn cookies(&self) -> Vec<Cookie<'static>> {
        let mut cookies = self
            .client
            .get_all_cookies()
            .await
            .expect("the browser's cookies");
        cookies.sort_by(|a, b| a.name().cmp(b.name()));
        cookies
    }

    /// The value of the cookie `name`, if the browser keeps one.
    async fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .await
            .into_iter()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }

    /// The session cookie's value (`sid`).
    async fn sid(&self) -> String {
        let cookies = self.cookies().await;
        self.cookie("sid")
            .await
            .unwrap_or_else(|| panic!("no sid cookie; the browser has {cookies:?}"))
    }

    /// Puts back a `sid` cookie, as a browser replaying an old cookie
    /// would (attributes as the demo sets them).
    async fn set_sid(&self, value: &str) {
        let _ = self.client.delete_cookie("sid").await;
        let url = self.client.current_url().await.expect("the page's URL");
        let host = url.host_str().expect("the page's host").to_owned();
        let mut cookie = Cookie::new("sid", value.to_owned());
        // Given, as chromedriver refuses a cookie without a domain.
        cookie.set_domain(host);
        cookie.set_path("/");
        cookie.set_http_only(true);
        cookie.set_secure(true);
        self.client
            .add_cookie(cookie)
            .await
            .expect("set the sid cookie");
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// The demo as a test starts it: with `SECRET` unless `env` names secrets,
/// the SQLite store in `dir` when `store`, and `env`.
fn start_demo(mode: Mode, dir: &TempDir, env: &[(&str, &str)]) -> Demo {
    let mut all: Vec<(&str, &str)> = Vec::new();
    if !env.iter().any(|(k, _)| k.starts_with("SESSION_SECRET")) {
        all.push(("SESSION_SECRET", SECRET));
    }
    let store = format!("sqlite:{}", dir.path().join("sessions.db").display());
    if mode == Mode::Sqlite {
        all.push(("SESSION_STORE", &store));
    }
    all.extend_from_slice(env);
    Demo::start(&all)
}

/// Where the sessions are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// In the cookie (no `SESSION_STORE`).
    Stateless,
    /// In SQLite (`SESSION_STORE=sqlite:PATH`); the cookie holds the id.
    Sqlite,
}

/// A page served from another origin than the demo's, for the cross-site
/// test: answers every request with `html`. Stops when dropped.
struct OtherSite {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OtherSite {
    fn serve(html: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the other site");
        let port = listener.local_addr().expect("its address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let html = Arc::new(html);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                // One thread per connection: a connection the browser opens
                // ahead and leaves idle must not hold up the next.
                let html = Arc::clone(&html);
                std::thread::spawn(move || answer(stream, &html));
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

/// Reads one request from `stream` and answers it with `html`.
fn answer(mut stream: TcpStream, html: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut request = Vec::new();
    let mut buf = [0; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{html}",
        html.len()
    );
}

impl Drop for OtherSite {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Saves the screenshot `png`: into this test's target directory, and
/// into the guide when `SESSION_UPDATE_SCREENSHOT=1`.
fn save_screenshot(png: &[u8]) {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is not a PNG ({} bytes)",
        png.len()
    );
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-page.png");
    std::fs::write(&target, png).expect("write the screenshot into the target directory");
    eprintln!("screenshot of the demo page: {}", target.display());
    if std::env::var("SESSION_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/images/demo-page.png");
        if let Some(dir) = guide.parent() {
            std::fs::create_dir_all(dir).expect("create docs/src/images");
        }
        std::fs::write(&guide, png).expect("write docs/src/images/demo-page.png");
        eprintln!("updated {}", guide.display());
    }
}

// ---------------------------------------------------------------------------
// The tests

/// Log in, reload (the user stays, the flash is gone, the counter goes
/// on), log out (the user is gone), then replay the cookie from before
/// the logout: in store mode the server deleted that session, so it logs
/// nobody in; a stateless cookie is the session itself, so it still does
/// (logout can only ask the browser to forget it).
async fn login_flash_logout(mode: Mode) {
    let Some(driver) = Driver::start() else {
        return;
    };
    let dir = TempDir::new("browser_login");
    let demo = start_demo(mode, &dir, &[]);
    let browser = driver.browser("a").await;
    let home = demo.url("localhost");

    browser.open(&home).await;
    assert_eq!(browser.user().await, None, "a new browser is logged out");
    assert_eq!(browser.flash().await, None);
    assert_eq!(browser.count().await, 1);

    browser.log_in("ada").await;
    assert_eq!(browser.user().await.as_deref(), Some("ada"));
    assert_eq!(browser.flash().await.as_deref(), Some("Welcome, ada!"));
    let count = browser.count().await;
    if mode == Mode::Sqlite {
        save_screenshot(&browser.client.screenshot().await.expect("a screenshot"));
    }
    let logged_in = browser.sid().await;

    browser.reload().await;
    assert_eq!(
        browser.user().await.as_deref(),
        Some("ada"),
        "after a reload"
    );
    assert_eq!(browser.flash().await, None, "the flash shows once");
    assert_eq!(browser.count().await, count + 1, "the counter goes on");

    browser.reload().await;
    assert_eq!(browser.flash().await, None, "the flash stays gone");
    assert_eq!(browser.count().await, count + 2);

    browser.click("logout").await;
    assert_eq!(browser.user().await, None, "after logging out");
    assert_eq!(browser.count().await, 1, "a new session after the logout");

    browser.set_sid(&logged_in).await;
    browser.reload().await;
    match mode {
        Mode::Sqlite => assert_eq!(
            browser.user().await,
            None,
            "the cookie from before the logout names a deleted session"
        ),
        Mode::Stateless => assert_eq!(
            browser.user().await.as_deref(),
            Some("ada"),
            "a stateless cookie replayed is the session it carries"
        ),
    }
    browser.close().await;
}

#[tokio::test]
async fn login_flash_logout_stateless() {
    login_flash_logout(Mode::Stateless).await;
}

#[tokio::test]
async fn login_flash_logout_sqlite() {
    login_flash_logout(Mode::Sqlite).await;
}

/// The demo's cookies are `Secure` (the default), `HttpOnly` and
/// `SameSite=Lax`; Chromium keeps `Secure` cookies from http://localhost
/// (a secure context), so the login holds on plain HTTP there.
async fn secure_cookie_on_localhost(mode: Mode) {
    let Some(driver) = Driver::start() else {
        return;
    };
    let dir = TempDir::new("browser_secure");
    let demo = start_demo(mode, &dir, &[]);
    let browser = driver.browser("a").await;

    browser.open(&demo.url("localhost")).await;
    browser.log_in("ada").await;
    browser.reload().await;
    assert_eq!(browser.user().await.as_deref(), Some("ada"));

    let cookies = browser.cookies().await;
    let sid = cookies
        .iter()
        .find(|c| c.name() == "sid")
        .unwrap_or_else(|| panic!("no sid cookie: {cookies:?}"));
    assert_eq!(sid.secure(), Some(true), "{sid:?}");
    assert_eq!(sid.http_only(), Some(true), "{sid:?}");
    assert!(sid.same_site().is_some_and(|s| s.is_lax()), "{sid:?}");
    assert_eq!(sid.path(), Some("/"), "{sid:?}");
    browser.close().await;
}

#[tokio::test]
async fn secure_cookie_on_localhost_stateless() {
    secure_cookie_on_localhost(Mode::Stateless).await;
}

#[tokio::test]
async fn secure_cookie_on_localhost_sqlite() {
    secure_cookie_on_localhost(Mode::Sqlite).await;
}

/// "Store 10 KB" with a stateless cookie and the default policy
/// (`SESSION_COOKIE_POLICY` unset: `error`): the server answers 500, and
/// the session the browser holds is the one from before.
#[tokio::test]
async fn big_data_stateless_error_policy() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let dir = TempDir::new("browser_big_error");
    let demo = start_demo(Mode::Stateless, &dir, &[]);
    let browser = driver.browser("a").await;
    let home = demo.url("localhost");

    browser.open(&home).await;
    browser.log_in("ada").await;
    // The page says what the button will do under each policy.
    let page = browser.body_text().await;
    assert!(
        page.contains("SESSION_COOKIE_POLICY=error") && page.contains("answers 500"),
        "{page}"
    );
    browser.click("big").await;
    let body = browser.body_text().await;
    assert_eq!(body.trim(), COMMIT_FAILED, "the policy's error");

    browser.open(&home).await;
    assert_eq!(browser.user().await.as_deref(), Some("ada"));
    assert_eq!(browser.data_len().await, 0, "nothing was stored");
    let names: Vec<String> = browser
        .cookies()
        .await
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("sid.")),
        "no chunks under the error policy: {names:?}"
    );
    browser.close().await;
}

/// "Store 10 KB" with a stateless cookie and `SESSION_COOKIE_POLICY=chunk`:
/// the cookie is split into `sid.0`, `sid.1`, … (each under the 4 KB a
/// browser keeps), Chromium sends them all back, and the data survives a
/// reload; "Clear data" brings the session back into one cookie.
#[tokio::test]
async fn big_data_stateless_chunked() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let dir = TempDir::new("browser_big_chunk");
    let demo = start_demo(Mode::Stateless, &dir, &[("SESSION_COOKIE_POLICY", "chunk")]);
    let browser = driver.browser("a").await;

    browser.open(&demo.url("localhost")).await;
    browser.log_in("ada").await;
    browser.click("big").await;
    browser.wait_for_page().await;
    assert_eq!(browser.flash().await.as_deref(), Some(STORED));
    assert_eq!(browser.data_len().await, BIG_DATA_LEN);

    browser.reload().await;
    assert_eq!(browser.user().await.as_deref(), Some("ada"));
    assert_eq!(browser.data_len().await, BIG_DATA_LEN, "after a reload");
    let cookies = browser.cookies().await;
    let chunks: Vec<&Cookie<'static>> = cookies
        .iter()
        .filter(|c| c.name().starts_with("sid."))
        .collect();
    assert!(
        chunks.len() >= 3,
        "10 KB takes at least three chunks: {:?}",
        cookies.iter().map(Cookie::name).collect::<Vec<_>>()
    );
    assert!(
        !cookies.iter().any(|c| c.name() == "sid"),
        "no unchunked sid beside the chunks: {cookies:?}"
    );
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(
            chunk.name(),
            format!("sid.{i}"),
            "chunks are numbered from 0"
        );
        assert!(
            chunk.name().len() + chunk.value().len() <= 4096,
            "{} is {} bytes",
            chunk.name(),
            chunk.value().len()
        );
    }

    browser.click("clear").await;
    browser.wait_for_page().await;
    assert_eq!(browser.data_len().await, 0);
    browser.reload().await;
    assert_eq!(browser.user().await.as_deref(), Some("ada"));
    assert_eq!(browser.data_len().await, 0);
    let names: Vec<String> = browser
        .cookies()
        .await
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(
        names,
        ["sid", "sx"],
        "the chunks are gone once the session fits one cookie again"
    );
    browser.close().await;
}

/// "Store 10 KB" with the SQLite store: the data stays on the server, the
/// cookie stays one short id, and the data survives a reload.
#[tokio::test]
async fn big_data_sqlite() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let dir = TempDir::new("browser_big_sqlite");
    let demo = start_demo(Mode::Sqlite, &dir, &[]);
    let browser = driver.browser("a").await;

    browser.open(&demo.url("localhost")).await;
    browser.log_in("ada").await;
    browser.click("big").await;
    browser.wait_for_page().await;
    assert_eq!(browser.flash().await.as_deref(), Some(STORED));
    browser.reload().await;
    assert_eq!(browser.user().await.as_deref(), Some("ada"));
    assert_eq!(browser.data_len().await, BIG_DATA_LEN, "after a reload");
    let cookies = browser.cookies().await;
    assert!(
        !cookies.iter().any(|c| c.name().starts_with("sid.")),
        "no chunks in store mode: {cookies:?}"
    );
    let sid = browser.sid().await;
    assert!(
        sid.len() < 200,
        "the cookie holds an id, not the data: {sid}"
    );
    browser.close().await;
}

/// Key rotation: log in under the old key, restart the server with a new
/// key first and the old one second; the user is still logged in, and the
/// first response re-seals the cookie under the new key (its password id,
/// `Fe26.2*new*…`), even one that changes nothing (`GET /me`). After that
/// the old key can go. A key the cookie was never sealed with opens
/// nothing (the check can fail).
#[tokio::test]
async fn key_rotation_stateless() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let dir = TempDir::new("browser_rotation");
    let old = format!("old={OLD_SECRET}");
    let both = format!("new={NEW_SECRET},old={OLD_SECRET}");
    let new = format!("new={NEW_SECRET}");
    let other = format!("other={OTHER_SECRET}");
    let mut demo = start_demo(Mode::Stateless, &dir, &[("SESSION_SECRETS", &old)]);
    let browser = driver.browser("a").await;

    browser.open(&demo.url("localhost")).await;
    browser.log_in("ada").await;
    let sealed_old = browser.sid().await;
    assert!(sealed_old.starts_with("Fe26.2*old*"), "{sealed_old}");

    demo.restart(&[("SESSION_SECRETS", &both)]);
    browser
        .client
        .goto(&format!("{}/me", demo.url("localhost")))
        .await
        .expect("open /me");
    assert_eq!(
        browser.body_text().await.trim(),
        "ada",
        "logged in after the rotation"
    );
    let resealed = browser.sid().await;
    assert!(
        resealed.starts_with("Fe26.2*new*"),
        "re-sealed under the new key by a request that changed nothing: {resealed}"
    );
    assert_ne!(resealed, sealed_old);

    demo.restart(&[("SESSION_SECRETS", &new)]);
    browser.open(&demo.url("localhost")).await;
    assert_eq!(
        browser.user().await.as_deref(),
        Some("ada"),
        "the old key retired: the re-sealed cookie opens under the new one alone"
    );

    demo.restart(&[("SESSION_SECRETS", &other)]);
    browser.open(&demo.url("localhost")).await;
    assert_eq!(browser.user().await, None, "a key it was not sealed with");
    browser.close().await;
}

/// Key rotation with the SQLite store: the cookie is the session id, not
/// sealed, so a new key changes nothing the browser holds, and the user
/// stays logged in.
#[tokio::test]
async fn key_rotation_sqlite() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let dir = TempDir::new("browser_rotation_sqlite");
    let old = format!("old={OLD_SECRET}");
    let both = format!("new={NEW_SECRET},old={OLD_SECRET}");
    let mut demo = start_demo(Mode::Sqlite, &dir, &[("SESSION_SECRETS", &old)]);
    let browser = driver.browser("a").await;

    browser.open(&demo.url("localhost")).await;
    browser.log_in("ada").await;
    let id = browser.sid().await;
    assert!(
        !id.starts_with("Fe26.2*"),
        "store mode's cookie is an id: {id}"
    );

    demo.restart(&[("SESSION_SECRETS", &both)]);
    browser.open(&demo.url("localhost")).await;
    assert_eq!(
        browser.user().await.as_deref(),
        Some("ada"),
        "after the rotation"
    );
    assert_eq!(browser.sid().await, id, "the same session id");
    browser.close().await;
}

/// A form on another site that posts to the demo's "Renew" route; its
/// button is clicked, as a user tricked into it would.
fn form_posting_to(demo: &Demo) -> String {
    format!(
        "<!doctype html><title>another site</title>\
         <form method=\"post\" action=\"{}/ui/renew\"><button id=\"go\">Go</button></form>",
        demo.url("localhost")
    )
}

/// A form POST from another site (`127.0.0.1:<port>`, not `localhost`)
/// to the demo: the `SameSite=Lax` cookie is not sent with it, so the
/// server runs "Renew" on a new, anonymous session (the flash on the page
/// the 303 leads to says the POST arrived, and nobody is logged in there).
/// The control: the same form served from `localhost:<port>`, the same
/// site as the demo (ports do not make sites), does carry the cookie.
async fn cross_site_post(mode: Mode) {
    let Some(driver) = Driver::start() else {
        return;
    };
    let dir = TempDir::new("browser_cross_site");
    let demo = start_demo(mode, &dir, &[]);
    let other = OtherSite::serve(form_posting_to(&demo));
    let browser = driver.browser("a").await;
    let home = demo.url("localhost");

    browser.open(&home).await;
    browser.log_in("ada").await;
    let logged_in = browser.sid().await;

    // Same site: the cookie goes along.
    browser
        .client
        .goto(&format!("http://localhost:{}/", other.port))
        .await
        .expect("open the same-site form");
    browser.click("go").await;
    browser.wait_for_page().await;
    assert_eq!(browser.flash().await.as_deref(), Some(RENEWED));
    assert_eq!(
        browser.user().await.as_deref(),
        Some("ada"),
        "a same-site POST carries the session cookie"
    );

    // Cross site: it does not.
    browser
        .client
        .goto(&format!("http://127.0.0.1:{}/", other.port))
        .await
        .expect("open the cross-site form");
    browser.click("go").await;
    browser.wait_for_page().await;
    assert_eq!(
        browser.flash().await.as_deref(),
        Some(RENEWED),
        "the cross-site POST reached the server"
    );
    assert_eq!(
        browser.user().await,
        None,
        "the server did not see the session on a cross-site POST"
    );
    assert_ne!(browser.sid().await, logged_in);

    // The session itself was not touched: its cookie still logs in.
    browser.set_sid(&logged_in).await;
    browser.reload().await;
    assert_eq!(browser.user().await.as_deref(), Some("ada"));
    browser.close().await;
}

#[tokio::test]
async fn cross_site_post_stateless() {
    cross_site_post(Mode::Stateless).await;
}

#[tokio::test]
async fn cross_site_post_sqlite() {
    cross_site_post(Mode::Sqlite).await;
}

/// Two browsers (two WebDriver sessions, two profiles) on the same demo:
/// each has its own session, and logging one out leaves the other.
async fn two_browsers(mode: Mode) {
    let Some(driver) = Driver::start() else {
        return;
    };
    let dir = TempDir::new("browser_two");
    let demo = start_demo(mode, &dir, &[]);
    let home = demo.url("localhost");
    let a = driver.browser("a").await;
    let b = driver.browser("b").await;

    a.open(&home).await;
    a.log_in("ada").await;
    b.open(&home).await;
    assert_eq!(b.user().await, None, "the second browser starts logged out");
    assert!(
        b.cookie("sid").await.is_some(),
        "the first visit sets a cookie"
    );
    b.log_in("bob").await;

    a.reload().await;
    b.reload().await;
    assert_eq!(a.user().await.as_deref(), Some("ada"));
    assert_eq!(b.user().await.as_deref(), Some("bob"));
    assert_ne!(a.sid().await, b.sid().await);

    a.click("logout").await;
    assert_eq!(a.user().await, None);
    b.reload().await;
    assert_eq!(
        b.user().await.as_deref(),
        Some("bob"),
        "untouched by the other's logout"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn two_browsers_stateless() {
    two_browsers(Mode::Stateless).await;
}

#[tokio::test]
async fn two_browsers_sqlite() {
    two_browsers(Mode::Sqlite).await;
}
