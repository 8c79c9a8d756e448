//! The keyed hashes iron needs, on the compression functions of the `sha1`
//! and `sha2` crates: PBKDF2-HMAC-SHA1 with one iteration and HMAC-SHA256.
//!
//! The `hmac` and `pbkdf2` crates compute the same values (the tests
//! compare them on random inputs), but through buffered hasher objects
//! that are cloned and finalised per block. Iron derives two 32-byte keys
//! and one MAC per seal, each a handful of compressions, so that glue cost
//! as much as the hashing itself. Here a secret's HMAC-SHA1 pads are
//! absorbed once, when the [`Secret`](crate::Secret) is built, and every
//! derivation is the minimum number of compressions: one per full block of
//! salt, plus two per output block.

use sha1::block_api::compress as sha1_compress;
use sha2::block_api::compress256;

/// SHA-1 and SHA-256 process 64-byte blocks.
const BLOCK: usize = 64;

/// SHA-1's initial state (FIPS 180-4, 5.3.1).
const SHA1_INIT: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const SHA256_INIT: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// A secret keyed into HMAC-SHA1: the SHA-1 states after its inner and
/// outer pad blocks. The PRF of iron's PBKDF2.
#[derive(Clone)]
pub(crate) struct Sha1Key {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl Sha1Key {
    /// Keys HMAC-SHA1 with `key` (of any length, as HMAC allows).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..20].copy_from_slice(&sha1_digest(&sha1(key)));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let (inner, outer) = pads(&block);
        let (mut i, mut o) = (SHA1_INIT, SHA1_INIT);
        sha1_compress(&mut i, &[inner]);
        sha1_compress(&mut o, &[outer]);
        Self { inner: i, outer: o }
    }

    /// PBKDF2-HMAC-SHA1 of the secret with `salt`, one iteration, 32 bytes:
    /// `T1 || T2[..12]` with `Ti = HMAC(secret, salt || INT_32_BE(i))`.
    /// The salt's full blocks are compressed once for both `Ti`.
    pub(crate) fn pbkdf2_32(&self, salt: &[u8]) -> [u8; 32] {
        let (full, rest) = salt.as_chunks::<BLOCK>();
        let mut state = self.inner;
        sha1_compress(&mut state, full);
        let inner_len = (BLOCK + salt.len() + 4) as u64;

        let mut key = [0u8; 32];
        for (index, out) in [1u32, 2].into_iter().zip(key.chunks_mut(20)) {
            // The salt's last partial block, then the block index.
            let mut tail = [0u8; BLOCK + 4];
            tail[..rest.len()].copy_from_slice(rest);
            tail[rest.len()..rest.len() + 4].copy_from_slice(&index.to_be_bytes());
            let mut inner = state;
            finish(
                &mut inner,
                &tail[..rest.len() + 4],
                inner_len,
                sha1_compress,
            );

            let mut outer = self.outer;
            finish(
                &mut outer,
                &sha1_digest(&inner),
                (BLOCK + 20) as u64,
                sha1_compress,
            );
            out.copy_from_slice(&sha1_digest(&outer)[..out.len()]);
        }
        key
    }
}

/// HMAC-SHA256 of `message` under a 32-byte key.
pub(crate) fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    block[..key.len()].copy_from_slice(key);
    let (inner_pad, outer_pad) = pads(&block);

    let mut inner = SHA256_INIT;
    compress256(&mut inner, &[inner_pad]);
    let (full, rest) = message.as_chunks::<BLOCK>();
    compress256(&mut inner, full);
    finish(
        &mut inner,
        rest,
        (BLOCK + message.len()) as u64,
        compress256,
    );

    let mut outer = SHA256_INIT;
    compress256(&mut outer, &[outer_pad]);
    finish(
        &mut outer,
        &sha256_digest(&inner),
        (BLOCK + 32) as u64,
        compress256,
    );
    sha256_digest(&outer)
}

/// SHA-1 of `data` (only for HMAC keys longer than a block).
fn sha1(data: &[u8]) -> [u32; 5] {
    let (full, rest) = data.as_chunks::<BLOCK>();
    let mut state = SHA1_INIT;
    sha1_compress(&mut state, full);
    finish(&mut state, rest, data.len() as u64, sha1_compress);
    state
}

/// HMAC's inner and outer pad blocks for a key already padded to a block.
fn pads(key: &[u8; BLOCK]) -> ([u8; BLOCK], [u8; BLOCK]) {
    (key.map(|b| b ^ 0x36), key.map(|b| b ^ 0x5c))
}

/// Compresses the last bytes of a message (`rest`, under one block plus the
/// few bytes appended here) with the Merkle–Damgård padding SHA-1 and
/// SHA-256 share: `0x80`, zeros, then the message length in bits as a
/// big-endian `u64`. `len` is the whole message's length in bytes.
fn finish<S>(state: &mut S, rest: &[u8], len: u64, compress: fn(&mut S, &[[u8; BLOCK]])) {
    debug_assert!(rest.len() < 2 * BLOCK - 8);
    let bits = (len * 8).to_be_bytes();
    if rest.len() + 9 <= BLOCK {
        // The common case in iron (a block index, a digest): one block.
        let mut block = [0u8; BLOCK];
        block[..rest.len()].copy_from_slice(rest);
        block[rest.len()] = 0x80;
        block[BLOCK - 8..].copy_from_slice(&bits);
        compress(state, &[block]);
    } else {
        let mut blocks = [[0u8; BLOCK]; 2];
        let flat = blocks.as_flattened_mut();
        flat[..rest.len()].copy_from_slice(rest);
        flat[rest.len()] = 0x80;
        flat[2 * BLOCK - 8..].copy_from_slice(&bits);
        compress(state, &blocks);
    }
}

/// A SHA-1 state as its digest: the big-endian bytes of its words.
fn sha1_digest(state: &[u32; 5]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// A SHA-256 state as its digest: the big-endian bytes of its words.
fn sha256_digest(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};
    use proptest::prelude::*;
    use sha1::Sha1;
    use sha2::Sha256;

    fn reference_pbkdf2(key: &[u8], salt: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (index, chunk) in [1u32, 2].into_iter().zip(out.chunks_mut(20)) {
            let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap();
            mac.update(salt);
            mac.update(&index.to_be_bytes());
            chunk.copy_from_slice(&mac.finalize().into_bytes()[..chunk.len()]);
        }
        out
    }

    fn reference_hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn rfc_6070_pbkdf2_sha1_one_iteration() {
        // RFC 6070, test case 1: P = "password", S = "salt", c = 1.
        let key = Sha1Key::new(b"password").pbkdf2_32(b"salt");
        assert_eq!(
            key[..20],
            [
                0x0c, 0x60, 0xc8, 0x0f, 0x96, 0x1f, 0x0e, 0x71, 0xf3, 0xa9, 0xb5, 0x24, 0xaf, 0x60,
                0x12, 0x06, 0x2f, 0xe0, 0x37, 0xa6
            ]
        );
    }

    #[test]
    fn hmac_sha256_at_every_length_around_the_blocks() {
        // Every padding case: one or two final blocks, full blocks before.
        let key = [0x0b; 32];
        for len in 0..=200 {
            let message: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert_eq!(
                hmac_sha256(&key, &message),
                reference_hmac_sha256(&key, &message),
                "message length {len}"
            );
        }
    }

    #[test]
    fn salts_of_every_length_around_the_blocks() {
        let key = Sha1Key::new(b"a-very-long-random-secret-of-at-least-32-chars");
        for len in 0..=200 {
            let salt: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert_eq!(
                key.pbkdf2_32(&salt),
                reference_pbkdf2(b"a-very-long-random-secret-of-at-least-32-chars", &salt),
                "salt length {len}"
            );
        }
    }

    proptest! {
        #[test]
        fn pbkdf2_matches_the_hmac_crate(
            key in proptest::collection::vec(any::<u8>(), 0..200),
            salt in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            prop_assert_eq!(Sha1Key::new(&key).pbkdf2_32(&salt), reference_pbkdf2(&key, &salt));
        }

        #[test]
        fn hmac_sha256_matches_the_hmac_crate(
            key in any::<[u8; 32]>(),
            message in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            prop_assert_eq!(hmac_sha256(&key, &message), reference_hmac_sha256(&key, &message));
        }
    }
}
