//! The byte format of the whole-server fuzz inputs, written once: [`fuzz_ops!`] turns one
//! table of variants and tags into the enum, its [`Arbitrary`] reader and `encode`, its
//! exact inverse, so the two can never disagree; [`Ops`] is a configuration followed by
//! such inputs until the bytes run out.
//!
//! A variant's bytes are its tag, then each field in order ([`Field`]): `u8` as is,
//! `u16` and `u32` little-endian, [`Short`] and [`Long`] bytes behind a 1- or 2-byte
//! length. A tag byte is read modulo the number of variants, so every byte string is
//! some input.

use super::config::FuzzConfig;
use arbitrary::{Arbitrary, Unstructured};

/// One field of a fuzz input: written by `put`, read back by `take`.
pub trait Field: Sized {
    /// Appends the field's bytes.
    fn put(&self, out: &mut Vec<u8>);
    /// Reads the field (what is left, if the input ends early).
    fn take(u: &mut Unstructured<'_>) -> arbitrary::Result<Self>;
}

impl Field for u8 {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
    fn take(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        u8::arbitrary(u)
    }
}

impl Field for u16 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend(self.to_le_bytes());
    }
    fn take(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        u16::arbitrary(u)
    }
}

impl Field for u32 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend(self.to_le_bytes());
    }
    fn take(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        u32::arbitrary(u)
    }
}

/// Bytes behind a one-byte length: at most 255.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Short(pub Vec<u8>);

/// Bytes behind a two-byte length: at most 65535.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Long(pub Vec<u8>);

/// Reads `len` bytes, or what is left.
fn bytes(u: &mut Unstructured<'_>, len: usize) -> arbitrary::Result<Vec<u8>> {
    Ok(u.bytes(len.min(u.len()))?.to_vec())
}

impl Field for Short {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(u8::try_from(self.0.len()).expect("at most 255 bytes"));
        out.extend_from_slice(&self.0);
    }
    fn take(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        let len = u8::arbitrary(u)?;
        Ok(Short(bytes(u, len.into())?))
    }
}

impl Field for Long {
    fn put(&self, out: &mut Vec<u8>) {
        let len = u16::try_from(self.0.len()).expect("at most 65535 bytes");
        out.extend(len.to_le_bytes());
        out.extend_from_slice(&self.0);
    }
    fn take(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        let len = u16::arbitrary(u)?;
        Ok(Long(bytes(u, len.into())?))
    }
}

/// A fuzz input that writes itself back to bytes.
pub trait Encode {
    /// Appends the bytes that `Arbitrary` reads back as `self`.
    fn encode(&self, out: &mut Vec<u8>);
}

/// Defines a fuzz input enum from `Variant { field: Type, .. } = tag` lines (tags
/// `0..n` in order), with its `Arbitrary` and [`Encode`].
#[macro_export]
macro_rules! fuzz_ops {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident $({ $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)? })? = $tag:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant $({ $( $(#[$fmeta])* $field: $ty ),* })? ),*
        }

        impl $name {
            /// How many kinds of input; a tag byte is read modulo this.
            pub const KINDS: u8 = [$($tag),*].len() as u8;
        }

        const _: () = {
            let tags = [$($tag),*];
            let mut i = 0;
            while i < tags.len() {
                assert!(tags[i] == i as u8, "tags must be 0, 1, 2, ... in order");
                i += 1;
            }
        };

        impl $crate::fuzz::ops::Encode for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                match self {
                    $( $name::$variant $({ $($field),* })? => {
                        out.push($tag);
                        $( $( $crate::fuzz::ops::Field::put($field, out); )* )?
                    } )*
                }
            }
        }

        impl<'a> arbitrary::Arbitrary<'a> for $name {
            fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                let tag = <u8 as arbitrary::Arbitrary>::arbitrary(u)? % Self::KINDS;
                $(
                    if tag == $tag {
                        return Ok($name::$variant $({
                            $($field: $crate::fuzz::ops::Field::take(u)?),*
                        })?);
                    }
                )*
                unreachable!("a tag below KINDS")
            }
        }
    };
}

/// A configuration and the inputs to apply, one by one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ops<Op> {
    /// Limits of the server under test.
    pub config: FuzzConfig,
    /// The inputs.
    pub ops: Vec<Op>,
}

impl<Op: Encode> Ops<Op> {
    /// The bytes that [`Arbitrary`] reads back as `self`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.config.encode().to_vec();
        for op in &self.ops {
            op.encode(&mut out);
        }
        out
    }
}

impl<'a, Op: Arbitrary<'a>> Arbitrary<'a> for Ops<Op> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let config = FuzzConfig::arbitrary(u)?;
        let mut ops = Vec::new();
        while !u.is_empty() {
            ops.push(Op::arbitrary(u)?);
        }
        Ok(Ops { config, ops })
    }
}
