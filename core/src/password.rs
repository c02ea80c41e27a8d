//! Room passwords, stored only as a salted SHA-256 hash and checked in constant time.
//!
//! The salt comes from the server's seeded generator, so two rooms with the same
//! password store different hashes and nothing in memory reveals the password.

use rand_core::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A salted hash of a room password.
#[derive(Clone)]
pub struct PasswordHash {
    salt: [u8; 16],
    hash: [u8; 32],
}

impl PasswordHash {
    /// Hashes `password` with a fresh salt drawn from `rng`.
    pub fn new(password: &str, rng: &mut impl RngCore) -> PasswordHash {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        PasswordHash {
            salt,
            hash: digest(&salt, password),
        }
    }

    /// True when `candidate` is the password; the comparison takes the same time either way.
    pub fn verify(&self, candidate: &str) -> bool {
        digest(&self.salt, candidate).ct_eq(&self.hash).into()
    }
}

impl PasswordHash {
    /// Salt then hash, 48 bytes: what cluster mode stores in the registry so that a
    /// join through another server can check the password.
    pub fn to_bytes(&self) -> [u8; 48] {
        let mut out = [0u8; 48];
        out[..16].copy_from_slice(&self.salt);
        out[16..].copy_from_slice(&self.hash);
        out
    }

    /// The hash [`PasswordHash::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8; 48]) -> PasswordHash {
        PasswordHash {
            salt: bytes[..16].try_into().expect("16 bytes"),
            hash: bytes[16..].try_into().expect("32 bytes"),
        }
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

fn digest(salt: &[u8; 16], password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn verifies_only_the_right_password() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let stored = PasswordHash::new("hunter2", &mut rng);
        assert!(stored.verify("hunter2"));
        assert!(!stored.verify("hunter3"));
        assert!(!stored.verify(""));
    }

    #[test]
    fn the_stored_form_reads_back_to_the_same_check() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let stored = PasswordHash::from_bytes(&PasswordHash::new("pw", &mut rng).to_bytes());
        assert!(stored.verify("pw"));
        assert!(!stored.verify("pW"));
    }

    #[test]
    fn same_password_gets_different_salts() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let a = PasswordHash::new("pw", &mut rng);
        let b = PasswordHash::new("pw", &mut rng);
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.hash, b.hash);
        assert!(a.verify("pw") && b.verify("pw"));
    }
}
