// SPDX-License-Identifier: GPL-2.0

//! The safe layer over the kernel's networking C interfaces.
//!
//! Everything `unsafe` in sockgroup lives below this module (in `rust/`);
//! `src/` uses only the safe types exported here.

#[path = "bindings.rs"]
pub(crate) mod bindings;
#[path = "kunit.rs"]
pub(crate) mod kunit;
#[path = "sock.rs"]
pub(crate) mod sock;
