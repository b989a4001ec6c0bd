//! Integration tests: real archives made with the real tools at test time.

#![allow(clippy::unwrap_used)]

mod checksums;
mod damage;
mod direct;
mod formats;
mod fuzz_corpus;
mod limits;
mod util;
