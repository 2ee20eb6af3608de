//! A blocking client of the distribution API (OCI distribution-spec, Docker
//! Registry HTTP API v2): manifests by tag or digest, blobs by digest, with
//! the bearer-token and basic authentication flows that a 401's
//! WWW-Authenticate header asks for.

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;

use super::digest::Digest;
use super::error::{Error, Result};
use super::reference::Reference;
use super::spec::{DOCKER_LIST, DOCKER_MANIFEST, MAX_MANIFEST, OCI_INDEX, OCI_MANIFEST};

/// Credentials, as CRI's AuthConfig carries them.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    pub username: String,
    pub password: String,
    /// base64 of `username:password`, used when username is empty.
    pub auth: String,
    /// An OAuth2 refresh token, exchanged at the token endpoint.
    pub identity_token: String,
    /// A bearer token sent as is.
    pub registry_token: String,
}

impl Auth {
    fn basic(&self) -> Option<String> {
        if !self.username.is_empty() {
            let raw = format!("{}:{}", self.username, self.password);
            Some(base64::engine::general_purpose::STANDARD.encode(raw))
        } else if !self.auth.is_empty() {
            Some(self.auth.clone())
        } else {
            None
        }
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    repository: String,
    auth: Option<Auth>,
    /// The Authorization header that the last challenge earned.
    authorization: Mutex<Option<String>>,
}

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

impl Client {
    /// `plain_http`: talk http (loopback and registries configured insecure).
    pub fn new(reference: &Reference, auth: Option<&Auth>, plain_http: bool) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(120))
            .user_agent(concat!("cri/", env!("CARGO_PKG_VERSION")))
            .build();
        let scheme = if plain_http { "http" } else { "https" };
        let authorization = auth
            .filter(|a| !a.registry_token.is_empty())
            .map(|a| format!("Bearer {}", a.registry_token));
        Client {
            agent,
            base: format!("{scheme}://{}/v2/{}", reference.registry_host(), reference.repository),
            repository: reference.repository.clone(),
            auth: auth.cloned(),
            authorization: Mutex::new(authorization),
        }
    }

    /// The manifest or index that `object` (a tag or a digest) names: its
    /// bytes, exactly as served (the digest is computed over them).
    pub fn manifest(&self, object: &str) -> Result<Vec<u8>> {
        let url = format!("{}/manifests/{object}", self.base);
        let resp = self.get(&url, Some(MANIFEST_ACCEPT))?;
        let ctype = resp.content_type().to_string();
        if ![
            OCI_INDEX,
            OCI_MANIFEST,
            DOCKER_LIST,
            DOCKER_MANIFEST,
            "application/json",
            "text/plain",
        ]
        .contains(&ctype.as_str())
        {
            return Err(Error::Registry {
                status: resp.status(),
                url,
                message: format!("unsupported manifest media type {ctype} (schema 1 images are not supported)"),
            });
        }
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Registry {
                status: 200,
                url: url.clone(),
                message: format!("reading the manifest: {e}"),
            })?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(Error::invalid(
                format!("manifest at {url}"),
                format!("larger than {MAX_MANIFEST} bytes"),
            ));
        }
        Ok(bytes)
    }

    /// Streams the blob into `out`; the caller verifies size and digest.
    pub fn blob(&self, digest: &Digest, out: &mut dyn Write) -> Result<u64> {
        let url = format!("{}/blobs/{digest}", self.base);
        let resp = self.get(&url, None)?;
        std::io::copy(&mut resp.into_reader(), out).map_err(|e| Error::Registry {
            status: 200,
            url,
            message: format!("reading the blob: {e}"),
        })
    }

    fn get(&self, url: &str, accept: Option<&str>) -> Result<ureq::Response> {
        let mut challenged = false;
        loop {
            let mut req = self.agent.get(url);
            if let Some(a) = accept {
                req = req.set("Accept", a);
            }
            if let Some(h) = self.authorization.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                req = req.set("Authorization", &h);
            }
            match req.call() {
                Ok(resp) => return Ok(resp),
                Err(ureq::Error::Status(401, resp)) if !challenged => {
                    challenged = true;
                    let header = resp.header("WWW-Authenticate").unwrap_or_default().to_string();
                    let h = self.answer(url, &header)?;
                    *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(h);
                }
                Err(ureq::Error::Status(status, resp)) => {
                    let mut body = String::new();
                    let _ = resp.into_reader().take(1024).read_to_string(&mut body);
                    let message = registry_message(&body).unwrap_or_else(|| body.trim().to_string());
                    return Err(Error::Registry {
                        status,
                        url: url.to_string(),
                        message,
                    });
                }
                Err(e) => {
                    return Err(Error::Registry {
                        status: 0,
                        url: url.to_string(),
                        message: e.to_string(),
                    })
                }
            }
        }
    }

    /// The Authorization header that answers a challenge.
    fn answer(&self, url: &str, header: &str) -> Result<String> {
        let denied = |why: &str| Error::Registry {
            status: 401,
            url: url.to_string(),
            message: why.to_string(),
        };
        let (scheme, params) =
            parse_challenge(header).ok_or_else(|| denied("unauthorized, and no usable WWW-Authenticate challenge"))?;
        let basic = self.auth.as_ref().and_then(Auth::basic);
        if scheme.eq_ignore_ascii_case("basic") {
            return basic
                .map(|b| format!("Basic {b}"))
                .ok_or_else(|| denied("the registry wants basic authentication: no credentials given"));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(denied(&format!("unsupported authentication scheme {scheme}")));
        }
        let param = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let realm = param("realm").ok_or_else(|| denied("bearer challenge without realm"))?;
        let default_scope = format!("repository:{}:pull", self.repository);
        let scope = param("scope").unwrap_or(&default_scope);
        let service = param("service").unwrap_or_default();
        let token_err = |e: ureq::Error| {
            let status = match &e {
                ureq::Error::Status(s, _) => *s,
                _ => 0,
            };
            Error::Registry {
                status,
                url: realm.to_string(),
                message: format!("token request failed: {e}"),
            }
        };
        let identity = self
            .auth
            .as_ref()
            .map(|a| a.identity_token.as_str())
            .filter(|t| !t.is_empty());
        let resp = if let Some(refresh) = identity {
            // OAuth2 refresh-token grant (the docker token specification).
            self.agent
                .post(realm)
                .send_form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("service", service),
                    ("scope", scope),
                    ("client_id", "cri"),
                ])
                .map_err(token_err)?
        } else {
            let mut req = self.agent.get(realm).query("scope", scope);
            if !service.is_empty() {
                req = req.query("service", service);
            }
            if let Some(b) = &basic {
                req = req.set("Authorization", &format!("Basic {b}"));
            }
            req.call().map_err(token_err)?
        };
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let t: Token = serde_json::from_reader(resp.into_reader().take(1 << 20)).map_err(|e| Error::Registry {
            status: 200,
            url: realm.to_string(),
            message: format!("token response is not JSON: {e}"),
        })?;
        let t = if t.token.is_empty() { t.access_token } else { t.token };
        if t.is_empty() {
            return Err(Error::Registry {
                status: 200,
                url: realm.to_string(),
                message: "token response without a token".into(),
            });
        }
        Ok(format!("Bearer {t}"))
    }
}

/// The first message of a registry's JSON error body ({"errors":[{...}]}).
fn registry_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let e = v.get("errors")?.get(0)?;
    Some(format!(
        "{}: {}",
        e.get("code")?.as_str()?,
        e.get("message").and_then(|m| m.as_str()).unwrap_or_default()
    ))
}

/// `Bearer realm="https://auth",service="reg",scope="repository:a:pull"`
/// into ("Bearer", [(realm, ...), ...]). Values may be quoted, with `\`
/// escapes, and contain commas.
pub(crate) fn parse_challenge(header: &str) -> Option<(String, Vec<(String, String)>)> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.push((key.trim().to_string(), value));
    }
    Some((scheme.to_string(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quotes_and_commas() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(s, "Bearer");
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        let (s, p) = parse_challenge(r#"Basic realm="x\"y""#).unwrap();
        assert_eq!((s.as_str(), p[0].1.as_str()), ("Basic", "x\"y"));
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn basic_credentials_come_from_username_or_auth() {
        let a = Auth {
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        };
        assert_eq!(a.basic().as_deref(), Some("dTpw"));
        let a = Auth {
            auth: "dTpw".into(),
            ..Default::default()
        };
        assert_eq!(a.basic().as_deref(), Some("dTpw"));
        assert_eq!(Auth::default().basic(), None);
    }

    #[test]
    fn registry_errors_are_read_from_the_body() {
        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            registry_message(body).as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(registry_message("<html>"), None);
    }
}
