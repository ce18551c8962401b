//! A headless Chromium driven over W3C WebDriver (HTTP + JSON to Debian's
//! `chromedriver`), for tests of pages the daemon serves: open a URL, find
//! elements by CSS selector, type, click, read text, take a screenshot.
//!
//! [`Browser::start`] answers [`BrowserError::Skipped`] when
//! `/usr/bin/chromedriver` or `/usr/bin/chromium` is missing (Debian
//! packages `chromium-driver`, `chromium`), so the test can report itself
//! ignored. chromedriver runs in a process group of its own, on a free port
//! of 127.0.0.1; dropping the [`Browser`] ends the session and kills that
//! group (chromedriver and every Chromium process it started).
//!
//! `confirm()` and `alert()` are accepted at once
//! (`unhandledPromptBehavior: accept`); a test that wants "Cancel" replaces
//! `window.confirm` through [`Browser::execute`].

use std::fmt;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Debian's chromedriver (package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Debian's Chromium (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long chromedriver gets to answer `/status` after it starts.
const DRIVER_START_LIMIT: Duration = Duration::from_secs(20);

/// Ports tried in turn: a free port found by binding port 0 can be taken by
/// someone else before chromedriver binds it.
const DRIVER_START_ATTEMPTS: u32 = 3;

/// The longest one WebDriver command may take (starting Chromium is the
/// slowest, a few seconds on a loaded machine).
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// How often the `wait_*` helpers look again.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// The key WebDriver names element references by (W3C WebDriver, 12.1).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium's flags: headless, no sandbox (tests run as root in
/// containers), and no traffic of its own beyond what the page asks for.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
];

/// Why a browser step failed.
#[derive(Debug)]
pub enum BrowserError {
    /// The browser cannot run here (a tool is missing): report the test ignored.
    Skipped(String),
    /// chromedriver or the page did not do what was asked.
    Failed(String),
}

impl fmt::Display for BrowserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrowserError::Skipped(why) => write!(f, "skipped: {why}"),
            BrowserError::Failed(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for BrowserError {}

/// What every browser step returns.
pub type Result<T> = std::result::Result<T, BrowserError>;

fn failed(what: impl Into<String>) -> BrowserError {
    BrowserError::Failed(what.into())
}

/// An element of the page (a WebDriver element reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(String);

impl Element {
    /// The reference as JSON, to pass it to [`Browser::execute`] (where the
    /// script sees the DOM element).
    pub fn json(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

/// A headless Chromium with one WebDriver session; closed on drop.
pub struct Browser {
    driver: Child,
    agent: ureq::Agent,
    /// `http://127.0.0.1:PORT/session/ID`: where commands go.
    session: String,
    /// Chromium's profile, removed on drop.
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub fn start() -> Result<Browser> {
        for (tool, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            if !Path::new(tool).exists() {
                return Err(BrowserError::Skipped(format!(
                    "{tool} not installed (Debian package {package})"
                )));
            }
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(COMMAND_LIMIT))
            // WebDriver errors come as 4xx/5xx with a JSON body to read.
            .http_status_as_error(false)
            .proxy(None)
            .build();
        let agent = ureq::Agent::new_with_config(config);
        let mut last = String::new();
        for _ in 0..DRIVER_START_ATTEMPTS {
            match start_driver(&agent) {
                Ok((driver, base)) => return Browser::open_session(driver, agent, base),
                Err(why) => last = why,
            }
        }
        Err(failed(format!("chromedriver did not start: {last}")))
    }

    fn open_session(driver: Child, agent: ureq::Agent, base: String) -> Result<Browser> {
        let profile = std::env::temp_dir().join(format!(
            "pollen-chromium-{}-{}",
            std::process::id(),
            driver.id()
        ));
        let mut browser = Browser {
            driver,
            agent,
            session: String::new(),
            profile,
        };
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", browser.profile.display()));
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "accept",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let created = browser.request("POST", &format!("{base}/session"), Some(capabilities))?;
        let id = created["sessionId"]
            .as_str()
            .ok_or_else(|| failed(format!("no sessionId in {created}")))?;
        browser.session = format!("{base}/session/{id}");
        Ok(browser)
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.command("POST", "/url", json!({ "url": url }))
            .map(drop)
    }

    /// The page's title.
    pub fn title(&self) -> Result<String> {
        string(self.command("GET", "/title", Value::Null)?)
    }

    /// The first element matching the CSS selector `css`.
    pub fn find(&self, css: &str) -> Result<Element> {
        let found = self.command(
            "POST",
            "/element",
            json!({ "using": "css selector", "value": css }),
        )?;
        element(&found)
    }

    /// Every element matching `css`, in document order (none: empty).
    pub fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let found = self.command(
            "POST",
            "/elements",
            json!({ "using": "css selector", "value": css }),
        )?;
        let list = found
            .as_array()
            .ok_or_else(|| failed(format!("elements: {found}")))?;
        list.iter().map(element).collect()
    }

    /// The first element inside `parent` matching `css`.
    pub fn find_in(&self, parent: &Element, css: &str) -> Result<Element> {
        let path = format!("/element/{}/element", parent.0);
        let body = json!({ "using": "css selector", "value": css });
        element(&self.command("POST", &path, body)?)
    }

    /// Waits up to `limit` for an element matching `css`.
    pub fn wait_for(&self, css: &str, limit: Duration) -> Result<Element> {
        let deadline = Instant::now() + limit;
        loop {
            match self.find(css) {
                Ok(found) => return Ok(found),
                Err(e) if Instant::now() >= deadline => {
                    return Err(failed(format!("no {css} after {limit:?}: {e}")))
                }
                Err(_) => std::thread::sleep(POLL_EVERY),
            }
        }
    }

    /// Waits up to `limit` for the text of the first element matching `css`
    /// to satisfy `want`; returns that text (or says what it last was).
    pub fn wait_text(
        &self,
        css: &str,
        limit: Duration,
        want: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let last = self.find(css).and_then(|e| self.text(&e));
            if let Ok(text) = &last {
                if want(text) {
                    return last;
                }
            }
            if Instant::now() >= deadline {
                let seen = match last {
                    Ok(text) => format!("{text:?}"),
                    Err(e) => e.to_string(),
                };
                return Err(failed(format!("{css} after {limit:?}: {seen}")));
            }
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// The rendered text of `element`.
    pub fn text(&self, element: &Element) -> Result<String> {
        string(self.command("GET", &format!("/element/{}/text", element.0), Value::Null)?)
    }

    /// An attribute of `element` (`data-id`, `class`...), if it has it.
    pub fn attribute(&self, element: &Element, name: &str) -> Result<Option<String>> {
        let path = format!("/element/{}/attribute/{name}", element.0);
        Ok(self
            .command("GET", &path, Value::Null)?
            .as_str()
            .map(String::from))
    }

    /// A DOM property of `element` (`value` of an input or progress bar).
    pub fn property(&self, element: &Element, name: &str) -> Result<Value> {
        self.command(
            "GET",
            &format!("/element/{}/property/{name}", element.0),
            Value::Null,
        )
    }

    /// Clicks `element` (scrolled into view first, as a user would).
    pub fn click(&self, element: &Element) -> Result<()> {
        let path = format!("/element/{}/click", element.0);
        self.command("POST", &path, json!({})).map(drop)
    }

    /// Types `text` into `element`; for a file input, `text` is the
    /// absolute path of the file to upload.
    pub fn send_keys(&self, element: &Element, text: &str) -> Result<()> {
        let path = format!("/element/{}/value", element.0);
        self.command("POST", &path, json!({ "text": text }))
            .map(drop)
    }

    /// Empties an input.
    pub fn clear(&self, element: &Element) -> Result<()> {
        let path = format!("/element/{}/clear", element.0);
        self.command("POST", &path, json!({})).map(drop)
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the
    /// page and returns what it returns.
    pub fn execute(&self, script: &str, args: Value) -> Result<Value> {
        let body = json!({ "script": script, "args": args });
        self.command("POST", "/execute/sync", body)
    }

    /// The page as a PNG, base64 (what WebDriver sends).
    pub fn screenshot_base64(&self) -> Result<String> {
        string(self.command("GET", "/screenshot", Value::Null)?)
    }

    /// Saves the page as a PNG at `path`.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let text = self.screenshot_base64()?;
        let png = pollen::rpc::base64::decode(text.as_bytes())
            .map_err(|e| failed(format!("screenshot: {e}")))?;
        std::fs::write(path, png).map_err(|e| failed(format!("{}: {e}", path.display())))
    }

    /// One command of this session (`path` after `/session/ID`).
    fn command(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let body = (!body.is_null()).then_some(body);
        self.request(method, &format!("{}{path}", self.session), body)
    }

    /// Sends one WebDriver request; its `value`, or the error it names.
    fn request(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value> {
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(url).call(),
            ("DELETE", _) => self.agent.delete(url).call(),
            (_, body) => self
                .agent
                .post(url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let mut response = sent.map_err(|e| failed(format!("{method} {url}: {e}")))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| failed(format!("{method} {url}: {e}")))?;
        let reply: Value = serde_json::from_str(&text)
            .map_err(|e| failed(format!("{method} {url}: {e}: {text:.200}")))?;
        let value = reply.get("value").cloned().unwrap_or(Value::Null);
        if status != 200 {
            let error = value["error"].as_str().unwrap_or("error");
            let message = value["message"].as_str().unwrap_or_default();
            return Err(failed(format!(
                "{method} {url}: {status} {error}: {message}"
            )));
        }
        Ok(value)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &self.session.clone(), None);
        }
        kill_group(&mut self.driver);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Starts chromedriver on a free port and waits until it is ready; returns
/// it and its base URL, or why not.
fn start_driver(agent: &ureq::Agent) -> std::result::Result<(Child, String), String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let mut driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own group, so drop can kill Chromium's processes with it.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{CHROMEDRIVER}: {e}"))?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + DRIVER_START_LIMIT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = driver.try_wait() {
            return Err(format!("port {port}: chromedriver exited ({status})"));
        }
        let ready = agent
            .get(format!("{base}/status"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .is_some_and(|status| status["value"]["ready"] == json!(true));
        if ready {
            return Ok((driver, base));
        }
        std::thread::sleep(POLL_EVERY);
    }
    kill_group(&mut driver);
    Err(format!(
        "port {port}: not ready after {DRIVER_START_LIMIT:?}"
    ))
}

/// Kills `child`'s process group (it leads one of its own) and reaps it.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

fn string(value: Value) -> Result<String> {
    value
        .as_str()
        .map(String::from)
        .ok_or_else(|| failed(format!("not a string: {value}")))
}

fn element(value: &Value) -> Result<Element> {
    value[ELEMENT_KEY]
        .as_str()
        .map(|id| Element(id.to_string()))
        .ok_or_else(|| failed(format!("not an element: {value}")))
}
