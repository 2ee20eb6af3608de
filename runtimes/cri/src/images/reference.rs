//! Image references as kubelet and users write them (`busybox`,
//! `user/app:1.0`, `127.0.0.1:5000/probe@sha256:...`), normalised the way
//! Docker and containerd do: the default registry is `docker.io`, whose
//! one-component names live under `library/`, and no tag means `latest`.

use std::fmt;

use super::digest::Digest;
use super::error::{Error, Result};

pub const DEFAULT_DOMAIN: &str = "docker.io";
/// docker.io is the name users see; its API lives at this host.
const DEFAULT_REGISTRY_HOST: &str = "registry-1.docker.io";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `127.0.0.1:5000`, `[::1]:5000`, `quay.io`.
    pub domain: String,
    /// The repository path inside the registry: `library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    pub fn parse(input: &str) -> Result<Reference> {
        let bad = |why: &str| Error::invalid(format!("image reference {input:?}"), why);
        if input.is_empty() {
            return Err(bad("empty"));
        }
        if input.len() > 4096 {
            return Err(bad("longer than 4096 bytes"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d).map_err(|e| bad(&e.to_string()))?)),
            None => (input, None),
        };
        // The tag is after the last ':' of the last path component (a ':'
        // before a '/' is the registry's port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(bad("a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
            _ => (DEFAULT_DOMAIN, name),
        };
        if !valid_domain(domain) {
            return Err(bad("the registry must be a host name or address with an optional port"));
        }
        let domain = if domain == "index.docker.io" {
            DEFAULT_DOMAIN
        } else {
            domain
        };
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(bad(
                "repository path components are lower-case letters and digits joined by '.', '_', '__' or dashes",
            ));
        }
        let repository = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if domain.len() + 1 + repository.len() > 255 {
            return Err(bad("the repository name is longer than 255 bytes"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            domain: domain.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// `docker.io/library/busybox`: the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// The host[:port] the registry API is served on.
    pub fn registry_host(&self) -> &str {
        if self.domain == DEFAULT_DOMAIN {
            DEFAULT_REGISTRY_HOST
        } else {
            &self.domain
        }
    }

    /// `name:tag`, when the reference has a tag.
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// What the registry is asked for: the digest when there is one (it pins
    /// the content), else the tag.
    pub fn object(&self) -> &str {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.as_str(),
            (None, Some(t)) => t,
            (None, None) => "latest",
        }
    }

    /// A registry on the loopback interface is reached over plain http, as
    /// containerd and Docker do; every other one over https unless configured.
    pub fn is_loopback(&self) -> bool {
        let host = match self.domain.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
            _ => &self.domain,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

pub(crate) fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

fn valid_domain(d: &str) -> bool {
    if let Some(rest) = d.strip_prefix('[') {
        // An IPv6 literal with an optional port: [::1]:5000.
        let Some((addr, port)) = rest.split_once(']') else {
            return false;
        };
        return addr.parse::<std::net::Ipv6Addr>().is_ok()
            && (port.is_empty()
                || port
                    .strip_prefix(':')
                    .is_some_and(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())));
    }
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
        && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// One path component: `[a-z0-9]+` groups joined by `.`, `_`, `__` or any
/// number of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn short_names_go_to_docker_hub_library_with_latest() {
        let r = parse("busybox");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        assert_eq!(r.object(), "latest");
        assert_eq!(parse("user/app:1.0").to_string(), "docker.io/user/app:1.0");
        assert_eq!(
            parse("index.docker.io/library/busybox:1").to_string(),
            "docker.io/library/busybox:1"
        );
    }

    #[test]
    fn explicit_registries_keep_their_port_and_path() {
        let r = parse("127.0.0.1:5000/probe:v1");
        assert_eq!(
            (r.domain.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "probe", Some("v1"))
        );
        assert!(r.is_loopback());
        let r = parse("localhost/a/b/c");
        assert_eq!((r.domain.as_str(), r.repository.as_str()), ("localhost", "a/b/c"));
        assert!(r.is_loopback());
        let r = parse("[::1]:5000/x");
        assert_eq!(r.registry_host(), "[::1]:5000");
        assert!(r.is_loopback());
        let r = parse("quay.io/org/img");
        assert!(!r.is_loopback());
        assert_eq!(r.tagged().as_deref(), Some("quay.io/org/img:latest"));
    }

    #[test]
    fn digests_pin_the_content() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = parse(&format!("busybox@{d}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.object(), d);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        let r = parse(&format!("localhost:5000/p:t@{d}"));
        assert_eq!((r.tag.as_deref(), r.object()), (Some("t"), d));
    }

    #[test]
    fn malformed_references_are_refused_with_the_reason() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:123",
            "a//b",
            "-a",
            "a-",
            "a...b",
            "host:port/x",
            "x y",
            "busybox:latest:again",
        ] {
            let err = Reference::parse(bad).expect_err(bad);
            assert!(matches!(err, Error::Invalid { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("image reference"), "{err}");
        }
        assert!(Reference::parse(&"a".repeat(300)).is_err());
    }

    #[test]
    fn components_allow_the_documented_separators() {
        for ok in ["a.b", "a_b", "a__b", "a---b", "a1/b2-c/d_e"] {
            parse(ok);
        }
    }
}
