//! A console visitor without a browser: signs in through the form, keeps the session cookie,
//! reads the CSRF value a page carries, and calls with or without it. Redirects are not
//! followed, so tests see them.

use super::Server;
use std::time::Duration;

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: String,
    pub set_cookie: String,
    pub csp: String,
    pub content_type: String,
    pub text: String,
}

/// A visitor of the console, with the session cookie once signed in.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub base: String,
    /// `sensei_session=...`, as the browser would send it back.
    pub cookie: Option<String>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

impl Visitor {
    pub fn new(server: &Server) -> Visitor {
        Visitor {
            base: server.base.clone(),
            cookie: None,
        }
    }

    /// Signs in with `token` through the form; the answer (a 303 on success).
    pub fn sign_in(&mut self, token: &str) -> Answer {
        let body = format!("token={token}");
        let answer = self.send(
            "POST",
            "/signin",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &body,
        );
        if let Some(pair) = answer.set_cookie.split(';').next()
            && pair.starts_with("sensei_session=")
        {
            self.cookie = Some(pair.to_owned());
        }
        answer
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], "")
    }

    /// A request with the session cookie (when signed in) and `headers`.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.as_bytes().to_vec()).expect("request");
        let response = agent()
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let h = response.headers();
        let get = |name: &str| super::header(h, name);
        let (location, set_cookie) = (get("location"), get("set-cookie"));
        let (csp, content_type) = (get("content-security-policy"), get("content-type"));
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().expect("body");
        Answer {
            status,
            location,
            set_cookie,
            csp,
            content_type,
            text,
        }
    }

    /// A JSON write with the cookie and, when given, the CSRF header.
    pub fn write(&self, method: &str, path: &str, csrf: Option<&str>, body: &str) -> Answer {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(csrf) = csrf {
            headers.push(("X-Sensei-CSRF", csrf));
        }
        self.send(method, path, &headers, body)
    }

    /// The CSRF value the console pages carry for this session.
    pub fn csrf(&self) -> String {
        let page = self.get("/");
        assert_eq!(page.status, 200, "{}", page.text);
        csrf_of(&page.text)
    }
}

/// The value of `<meta name="sensei-csrf" content="...">`.
pub fn csrf_of(page: &str) -> String {
    let marker = r#"<meta name="sensei-csrf" content=""#;
    let start = page.find(marker).expect("a CSRF meta element") + marker.len();
    let end = page[start..].find('"').expect("the end of the CSRF value");
    page[start..start + end].to_owned()
}
