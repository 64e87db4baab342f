//! A headless Chromium driven over WebDriver (W3C, through Debian's `chromedriver`) with
//! plain HTTP calls. [`Browser::start`] returns `None` when the binaries are not installed
//! (CI installs them; `.ci/run` does). Waiting is polling with a deadline.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session with its own chromedriver; both end on drop.
pub struct Browser {
    driver: Child,
    url: String,
    agent: ureq::Agent,
}

/// Why the browser tests cannot run here, when they cannot.
pub fn missing() -> Option<String> {
    [CHROMIUM, DRIVER]
        .iter()
        .find(|p| !std::path::Path::new(p).exists())
        .map(|p| format!("{p} is not installed (apt-get install chromium chromium-driver)"))
}

impl Browser {
    /// A new headless browser, or `None` when Chromium or its driver is not installed.
    pub fn start() -> Option<Browser> {
        if let Some(why) = missing() {
            eprintln!("SKIPPED: the browser tests need Chromium: {why}");
            return None;
        }
        let port = super::free_port();
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        super::wait_for("chromedriver to answer", || {
            agent.get(format!("{base}/status")).call().ok().map(|_| ())
        });
        // Nothing but loopback resolves: a request elsewhere would fail, and the test
        // checks the page's resource list besides.
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1300", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            ]}
        }}});
        let mut browser = Browser {
            driver,
            url: base,
            agent,
        };
        let session = browser.call("POST", "/session", Some(caps));
        let id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {session}"))
            .to_owned();
        browser.url = format!("{}/session/{id}", browser.url);
        Some(browser)
    }

    /// A WebDriver call; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let reply = match body {
            Some(body) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.to_string()),
            None if method == "GET" => self.agent.get(&url).call(),
            None => self.agent.delete(&url).call(),
        };
        let text = reply
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
            .into_body()
            .read_to_string()
            .expect("WebDriver answer");
        let value: Value = serde_json::from_str(&text).expect("WebDriver JSON");
        value.get("value").cloned().unwrap_or(value)
    }

    pub fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page; its result.
    pub fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Polls `script` until it returns something truthy (deadline 30 s).
    pub fn wait(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.eval(script);
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            if Instant::now() >= deadline {
                let page = self.eval("return location.href + '\\n' + document.body.innerText;");
                panic!("the page never showed {what}; it shows {page}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Presses and releases Tab, as a keyboard user moving to the next control.
    pub fn press_tab(&self) {
        self.press("Tab");
    }

    /// Presses and releases a key: `Tab`, `Enter`, `Home`, `End` or an arrow (`ArrowDown`, ...).
    pub fn press(&self, key: &str) {
        let code = match key {
            "Tab" => "\u{E004}",
            "Enter" => "\u{E007}",
            "End" => "\u{E010}",
            "Home" => "\u{E011}",
            "ArrowLeft" => "\u{E012}",
            "ArrowUp" => "\u{E013}",
            "ArrowRight" => "\u{E014}",
            "ArrowDown" => "\u{E015}",
            other => panic!("no WebDriver code for the key {other}"),
        };
        let keys = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
            { "type": "keyDown", "value": code }, { "type": "keyUp", "value": code },
        ]}]});
        self.call("POST", "/actions", Some(keys));
    }

    /// The text of the open `confirm` dialog, once there is one.
    pub fn dialog(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(text) = self.call("GET", "/alert/text", None).as_str() {
                return text.to_owned();
            }
            assert!(Instant::now() < deadline, "no dialog opened");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn answer_dialog(&self, accept: bool) {
        let what = if accept { "accept" } else { "dismiss" };
        self.call("POST", &format!("/alert/{what}"), Some(json!({})));
    }

    /// Saves a screenshot as `target/console-screenshots/{name}.png`.
    pub fn screenshot(&self, name: &str) {
        let data = self.call("GET", "/screenshot", None);
        let png = base64(data.as_str().expect("screenshot data"));
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Every URL the page loaded or called.
    pub fn requests(&self) -> Vec<String> {
        let v = self.eval(
            "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name));",
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.url).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64, as WebDriver sends screenshots.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &s)| n | (u32::from(s) << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}
