//! Content digests (`sha256:<64 hex>`, the only algorithm registries use)
//! and a writer/reader that hashes what passes through it.

use std::fmt;
use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use super::error::{Error, Result};

/// A validated `sha256:<hex>` digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Digest> {
        let Some(hex) = s.strip_prefix("sha256:") else {
            return Err(Error::invalid(
                format!("digest {s:?}"),
                "only sha256 digests are supported",
            ));
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(Error::invalid(
                format!("digest {s:?}"),
                "expected 64 lower-case hex digits after sha256:",
            ));
        }
        Ok(Digest(s.to_string()))
    }

    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex(&Sha256::digest(bytes))))
    }

    /// The 64 hex digits, used as a file name.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Fails with a DigestMismatch naming `what` unless `got` is this digest.
    pub fn verify(&self, what: &str, got: &Digest) -> Result<()> {
        if self == got {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                what: what.to_string(),
                expected: self.0.clone(),
                got: got.0.clone(),
            })
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes and counts what is written through it.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest(format!("sha256:{}", hex(&self.hasher.finalize()))),
            self.len,
        )
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes and counts what is read through it.
pub struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    pub fn finish(self) -> (Digest, u64) {
        (Digest(format!("sha256:{}", hex(&self.hasher.finalize()))), self.len)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_known_input() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_refuses_malformed_digests() {
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").is_err());
        assert!(Digest::parse("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855").is_err());
        assert!(Digest::parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").is_ok());
    }

    #[test]
    fn verify_reports_expected_and_got() {
        let want = Digest::of(b"a");
        let err = want.verify("blob", &Digest::of(b"b")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::DigestMismatch { .. }));
        assert!(
            msg.contains(want.as_str()) && msg.contains(Digest::of(b"b").as_str()),
            "{msg}"
        );
    }

    #[test]
    fn hash_writer_matches_one_shot_digest() {
        let mut w = HashWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (buf, d, n) = w.finish();
        assert_eq!((d, n), (Digest::of(b"hello world"), 11));
        assert_eq!(buf, b"hello world");
    }
}
