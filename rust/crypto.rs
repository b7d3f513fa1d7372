// SPDX-License-Identifier: GPL-2.0

//! Cryptography: HMAC-SHA256 with the kernel crypto API, and random bytes.
//!
//! C headers: [`include/crypto/hash.h`](srctree/include/crypto/hash.h),
//! [`include/crypto/utils.h`](srctree/include/crypto/utils.h),
//! [`include/linux/random.h`](srctree/include/linux/random.h).

use super::bindings;
use core::ptr::NonNull;
use kernel::{
    c_str,
    error::{from_err_ptr, to_result},
    prelude::*,
};

/// The length of an HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;

/// An HMAC-SHA256 transform (`crypto_shash` of `"hmac(sha256)"`) with its key set.
///
/// # Invariants
///
/// `tfm` was returned by a successful `crypto_alloc_shash`, its key was set,
/// and it is owned by this value, which frees it (zeroized) in `Drop`.
pub struct HmacSha256 {
    tfm: NonNull<bindings::crypto_shash>,
}

// SAFETY: The transform is not tied to a thread; `crypto_free_shash` may run
// on any CPU.
unsafe impl Send for HmacSha256 {}
// SAFETY: Through `&self` only `crypto_shash_tfm_digest` runs, which keeps its
// state in a descriptor on the caller's stack and only reads the transform
// (the key was set before the value was shared).
unsafe impl Sync for HmacSha256 {}

impl HmacSha256 {
    /// Allocates a transform keyed with `key` (process context: may sleep).
    pub fn new(key: &[u8]) -> Result<Self> {
        // SAFETY: The name is a NUL-terminated string; type and mask 0 ask
        // for any implementation.
        let tfm = from_err_ptr(unsafe {
            bindings::crypto_alloc_shash(c_str!("hmac(sha256)").as_char_ptr(), 0, 0)
        })?;
        let tfm = NonNull::new(tfm).ok_or(ENOMEM)?;
        // INVARIANT: Allocated here; if `setkey` fails, `Drop` frees it.
        let this = Self { tfm };
        // SAFETY: `tfm` is a live transform that nobody else uses yet; `key`
        // is valid for `key.len()` bytes, which HMAC copies (hashed if
        // longer than a block).
        to_result(unsafe {
            bindings::crypto_shash_setkey(this.tfm.as_ptr(), key.as_ptr(), key.len() as u32)
        })?;
        Ok(this)
    }

    /// The tag of `data` (any context: the descriptor is on the stack).
    pub fn digest(&self, data: &[u8]) -> Result<[u8; TAG_LEN]> {
        let mut out = [0u8; TAG_LEN];
        // SAFETY: By the type invariant `tfm` is live and keyed; `data` is
        // valid for its length; `out` has room for the digest size of
        // SHA-256 (32 bytes).
        to_result(unsafe {
            bindings::crypto_shash_tfm_digest(
                self.tfm.as_ptr(),
                data.as_ptr(),
                data.len() as u32,
                out.as_mut_ptr(),
            )
        })?;
        Ok(out)
    }

    /// The tag of the concatenation of `parts` (any context: the
    /// descriptor is on the stack, as `SHASH_DESC_ON_STACK` puts it, and
    /// zeroized after use).
    pub fn digest_parts(&self, parts: &[&[u8]]) -> Result<[u8; TAG_LEN]> {
        if let [one] = parts {
            return self.digest(one);
        }
        // SAFETY: By the type invariant `tfm` is live.
        let descsize = unsafe { bindings::sg_crypto_shash_descsize(self.tfm.as_ptr()) } as usize;
        let mut desc = DescBuf([0; DESC_WORDS]);
        if core::mem::size_of::<bindings::shash_desc>() + descsize > core::mem::size_of::<DescBuf>()
        {
            return Err(EINVAL);
        }
        let d = desc.0.as_mut_ptr().cast::<bindings::shash_desc>();
        let mut out = [0u8; TAG_LEN];
        // SAFETY: `d` points to a zeroed, aligned buffer with room for the
        // descriptor and the transform's context (checked above), used by
        // this call only; `tfm` is live and keyed; each part is valid for
        // its length; `out` has room for a SHA-256 digest.
        let r = unsafe {
            (*d).tfm = self.tfm.as_ptr();
            let mut err = bindings::sg_crypto_shash_init(d);
            for p in parts {
                if err == 0 {
                    err = bindings::crypto_shash_update(d, p.as_ptr(), p.len() as u32);
                }
            }
            if err == 0 {
                err = bindings::crypto_shash_final(d, out.as_mut_ptr());
            }
            err
        };
        // The context held keyed state: wipe it (`shash_desc_zero`).
        // SAFETY: `desc` is ours and valid for its size.
        unsafe {
            bindings::sg_memzero_explicit(desc.0.as_mut_ptr().cast(), core::mem::size_of::<DescBuf>())
        };
        to_result(r)?;
        Ok(out)
    }

    /// Whether `tag` is the tag of `data`, compared in constant time.
    /// A failure of the transform counts as a mismatch.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        match self.digest(data) {
            Ok(expected) => tag.len() == TAG_LEN && !memneq(&expected, tag),
            Err(_) => false,
        }
    }
}

impl Drop for HmacSha256 {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own `tfm`; it is not used again.
        // The crypto API zeroizes the transform's context (the key) as it
        // frees it (`crypto_destroy_tfm` uses `kfree_sensitive`).
        unsafe { bindings::sg_crypto_free_shash(self.tfm.as_ptr()) };
    }
}

/// Words of a descriptor on the stack: `sizeof(struct shash_desc) +
/// HASH_MAX_DESCSIZE` bytes, as `SHASH_DESC_ON_STACK` reserves.
const DESC_WORDS: usize = (2 * core::mem::size_of::<bindings::shash_desc>() + 360).div_ceil(8);

/// A descriptor's room, aligned like `struct shash_desc`'s context.
#[repr(C, align(16))]
struct DescBuf([u64; DESC_WORDS]);

/// Whether `a` and `b` differ, in time that depends only on their length
/// (`crypto_memneq`). Slices of different lengths differ.
pub fn memneq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return true;
    }
    // SAFETY: Both slices are valid for `a.len()` bytes.
    unsafe { bindings::sg_crypto_memneq(a.as_ptr().cast(), b.as_ptr().cast(), a.len()) }
}

/// Fills `buf` with random bytes (`get_random_bytes`: the kernel's CRNG).
pub fn random_bytes(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writing `buf.len()` bytes.
    unsafe { bindings::get_random_bytes(buf.as_mut_ptr().cast(), buf.len()) };
}

/// Overwrites `buf` with zeros in a way the compiler keeps (`memzero_explicit`).
pub fn zeroize(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writing `buf.len()` bytes.
    unsafe { bindings::sg_memzero_explicit(buf.as_mut_ptr().cast(), buf.len()) };
}
