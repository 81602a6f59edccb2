//! Just enough DER to find a certificate's public key and a PKCS#8 key's algorithm: for the
//! certificate credential and for the test kit's mock of Entra, which checks its assertions.
//!
//! Certificates are not validated here (Entra does that); this only locates fields, and any
//! input it does not understand is `None`, never a panic.

/// `rsaEncryption` (1.2.840.113549.1.1.1).
pub(crate) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `id-ecPublicKey` (1.2.840.10045.2.1).
pub(crate) const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const VERSION_TAG: u8 = 0xa0;

/// A cursor over DER bytes.
struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Self {
        Reader { input }
    }

    /// The next element: `(tag, contents)`.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let (contents, rest) = rest.split_at(len);
        self.input = rest;
        Some((tag, contents))
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.next()? {
            (t, contents) if t == tag => Some(contents),
            _ => None,
        }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.input.first().copied()
    }
}

/// A certificate's public key: its algorithm OID and the key bits (for RSA, the DER
/// `RSAPublicKey`).
pub(crate) struct PublicKey<'a> {
    pub(crate) algorithm: &'a [u8],
    pub(crate) key: &'a [u8],
}

/// The subject public key of an X.509 certificate.
pub(crate) fn certificate_public_key(cert: &[u8]) -> Option<PublicKey<'_>> {
    let certificate = Reader::new(cert).expect(SEQUENCE)?;
    let mut tbs = Reader::new(Reader::new(certificate).expect(SEQUENCE)?);
    if tbs.peek_tag() == Some(VERSION_TAG) {
        tbs.next()?;
    }
    tbs.expect(INTEGER)?; // serial number
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    tbs.expect(SEQUENCE)?; // validity
    tbs.expect(SEQUENCE)?; // subject
    let mut spki = Reader::new(tbs.expect(SEQUENCE)?);
    let algorithm = Reader::new(spki.expect(SEQUENCE)?).expect(OID)?;
    let bits = spki.expect(BIT_STRING)?;
    // The first byte counts unused bits, always 0 for a key.
    let (&0, key) = bits.split_first()? else {
        return None;
    };
    Some(PublicKey { algorithm, key })
}

/// The algorithm OID of a PKCS#8 `PrivateKeyInfo`.
pub(crate) fn pkcs8_algorithm(key: &[u8]) -> Option<&[u8]> {
    let mut info = Reader::new(Reader::new(key).expect(SEQUENCE)?);
    info.expect(INTEGER)?; // version
    Reader::new(info.expect(SEQUENCE)?).expect(OID)
}

/// The algorithm-specific key inside a PKCS#8 `PrivateKeyInfo` (for RSA, the PKCS#1
/// `RSAPrivateKey`).
pub(crate) fn pkcs8_private_key(key: &[u8]) -> Option<&[u8]> {
    let mut info = Reader::new(Reader::new(key).expect(SEQUENCE)?);
    info.expect(INTEGER)?; // version
    info.expect(SEQUENCE)?; // algorithm
    info.expect(OCTET_STRING)
}

/// Whether `bytes` start like a PKCS#12 `PFX`: a SEQUENCE whose first element is the INTEGER 3
/// (its version). Only the start is looked at, so a truncated file still counts; a certificate
/// or a key in DER does not (they start with a SEQUENCE, or with the INTEGER 0 or 1).
pub(crate) fn starts_like_pfx(bytes: &[u8]) -> bool {
    let Some((&SEQUENCE, rest)) = bytes.split_first() else {
        return false;
    };
    let Some((&first, rest)) = rest.split_first() else {
        return false;
    };
    let length_bytes = if first < 0x80 {
        0
    } else {
        usize::from(first & 0x7f)
    };
    rest.get(length_bytes..)
        .is_some_and(|rest| rest.starts_with(&[INTEGER, 0x01, 0x03]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_truncation() {
        let mut r = Reader::new(&[0x02, 0x01, 0x05, 0x30, 0x81, 0x01, 0x00]);
        assert_eq!(r.next(), Some((0x02, &[0x05][..])));
        assert_eq!(r.next(), Some((0x30, &[0x00][..])));
        assert_eq!(r.next(), None);
        assert_eq!(Reader::new(&[0x30, 0x05, 0x00]).next(), None);
        assert_eq!(Reader::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).next(), None);
        assert_eq!(Reader::new(&[0x30]).next(), None);
        assert!(certificate_public_key(b"garbage").is_none());
        assert!(certificate_public_key(&[]).is_none());
        assert!(pkcs8_algorithm(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_none());
    }

    #[test]
    fn a_pfx_is_told_from_a_certificate_or_a_key_by_its_start() {
        assert!(starts_like_pfx(&[0x30, 0x03, 0x02, 0x01, 0x03]));
        assert!(starts_like_pfx(&[
            0x30, 0x82, 0x0a, 0x00, 0x02, 0x01, 0x03, 0x30
        ]));
        assert!(!starts_like_pfx(&[0x30, 0x82, 0x0a, 0x00, 0x30, 0x82]));
        assert!(!starts_like_pfx(&[0x30, 0x03, 0x02, 0x01, 0x00]));
        assert!(!starts_like_pfx(&[0x30, 0x84, 0x01]));
        assert!(!starts_like_pfx(&[0x30]));
        assert!(!starts_like_pfx(&[]));
    }
}
