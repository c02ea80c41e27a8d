//! The event log of one run, kept as a running hash plus the last few lines.
//!
//! Every input fed to the server and every output it produced is written here as text
//! (`Debug` forms, times as offsets from the start of the run, never absolute
//! `Instant`s). Two runs of the same schedule must give the same [`Trace::hash`]; the
//! tail is printed when an invariant breaks, so a failure shows what led to it.
//!
//! ```
//! use ocm_sim::trace::Trace;
//! use std::fmt::Write;
//! let (mut a, mut b) = (Trace::default(), Trace::default());
//! writeln!(a, "t=1ms hello").unwrap();
//! writeln!(b, "t=1ms hello").unwrap();
//! assert_eq!(a.hash(), b.hash());
//! ```

use std::collections::VecDeque;
use std::fmt;

/// Lines kept for failure reports, and how much of each.
const TAIL_LINES: usize = 40;
const TAIL_LINE_CHARS: usize = 300;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A 64-bit FNV-1a hash of everything written, and the last lines in clear.
#[derive(Clone, Debug)]
pub struct Trace {
    hash: u64,
    bytes: u64,
    tail: VecDeque<String>,
    line: String,
    keep_tail: bool,
}

impl Default for Trace {
    fn default() -> Trace {
        Trace {
            hash: FNV_OFFSET,
            bytes: 0,
            tail: VecDeque::new(),
            line: String::new(),
            keep_tail: true,
        }
    }
}

impl Trace {
    /// A trace that only hashes (the deep run, where formatting the tail costs time).
    pub fn hash_only() -> Trace {
        Trace {
            keep_tail: false,
            ..Trace::default()
        }
    }

    /// The hash of every byte written so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// How many bytes were written.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The last lines written, oldest first.
    pub fn tail(&self) -> String {
        let mut out = String::new();
        for line in &self.tail {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&self.line);
        out
    }
}

impl Trace {
    /// Appends to the current tail line, keeping at most [`TAIL_LINE_CHARS`] of it.
    fn push_clipped(&mut self, text: &str) {
        let room = TAIL_LINE_CHARS.saturating_sub(self.line.len());
        if text.len() <= room {
            return self.line.push_str(text);
        }
        let mut cut = room;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.line.push_str(&text[..cut]);
        if !self.line.ends_with('…') {
            self.line.push('…');
        }
    }
}

impl fmt::Write for Trace {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
        self.bytes += s.len() as u64;
        if self.keep_tail {
            for piece in s.split_inclusive('\n') {
                match piece.strip_suffix('\n') {
                    Some(rest) => {
                        self.push_clipped(rest);
                        if self.tail.len() == TAIL_LINES {
                            self.tail.pop_front();
                        }
                        self.tail.push_back(std::mem::take(&mut self.line));
                    }
                    None => self.push_clipped(piece),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn hash_depends_on_every_byte_and_tail_keeps_last_lines() {
        let (mut a, mut b) = (Trace::default(), Trace::default());
        write!(a, "abc").unwrap();
        write!(b, "abd").unwrap();
        assert_ne!(a.hash(), b.hash());
        let mut t = Trace::default();
        for i in 0..50 {
            writeln!(t, "line {i}").unwrap();
        }
        assert!(t.tail().starts_with("line 10\n"));
        assert!(t.tail().ends_with("line 49\n"));
        assert_eq!(
            t.len(),
            (0..50)
                .map(|i: i32| format!("line {i}\n").len() as u64)
                .sum::<u64>()
        );
    }
}
