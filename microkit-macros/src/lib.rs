//! Procedural macros for [microkit](https://docs.rs/microkit).
//!
//! Use them through the `microkit` crate, which re-exports them behind its default `derive`
//! feature, as serde does with `serde_derive`. The `#[derive(Resource)]` macro lands here with the
//! resource layer; until then this crate exports nothing.
